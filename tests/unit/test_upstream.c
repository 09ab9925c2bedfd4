/*
 * SPDX-License-Identifier: MIT
 *
 * The upstream client's pure rules: retry eligibility (upstream-api §4.2),
 * Retry-After parsing, and error-envelope mapping (§4.1).
 */
#include <errno.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "t.h"
#include "upstream.h"

TEST(retry_eligibility)
{
	ASSERT(upstream_retry_eligible(VERB_GET, "/agents/?limit=5", false));
	ASSERT(upstream_retry_eligible(VERB_DELETE, "/agents/5", false));
	ASSERT(!upstream_retry_eligible(VERB_PATCH, "/agents/5", true));
	ASSERT(upstream_retry_eligible(VERB_POST, "/runs/", true));
	ASSERT(upstream_retry_eligible(VERB_POST, "/runs", true));
	ASSERT(!upstream_retry_eligible(VERB_POST, "/runs/", false));
	ASSERT(upstream_retry_eligible(VERB_POST, "/runs/with-files", true));
	ASSERT(upstream_retry_eligible(VERB_POST, "/runs/with-files/", true));
	ASSERT(upstream_retry_eligible(VERB_POST, "/runs/42/reply", true));
	ASSERT(upstream_retry_eligible(VERB_POST, "/runs/42/reply/", true));
	ASSERT(upstream_retry_eligible(VERB_POST, "/runs/42/reply/with-files",
	    true));
	ASSERT(upstream_retry_eligible(VERB_POST, "/tasks/7/runs", true));
	ASSERT(!upstream_retry_eligible(VERB_POST, "/runs/first-session",
	    true));
	ASSERT(!upstream_retry_eligible(VERB_POST, "/tasks/", true));
	ASSERT(!upstream_retry_eligible(VERB_POST, "/runs/42/retry", true));
	ASSERT(!upstream_retry_eligible(VERB_POST, "/runs/42/cancel", true));
	ASSERT(!upstream_retry_eligible(VERB_POST, "/runs/x/reply", true));
	ASSERT(!upstream_retry_eligible(VERB_POST, "/runs//reply", true));
	ASSERT(!upstream_retry_eligible(VERB_POST, "/runs/42/replyx", true));
}

TEST(retry_after)
{
	ASSERT(upstream_parse_retry_after("0") == 0);
	ASSERT(upstream_parse_retry_after("1.5") == 1.5);
	ASSERT(upstream_parse_retry_after("30") == 30);
	ASSERT(upstream_parse_retry_after(
		   "Wed, 21 Oct 2015 07:28:00 GMT") < 0);
	ASSERT(upstream_parse_retry_after("") < 0);
	ASSERT(upstream_parse_retry_after("-1") < 0);
	ASSERT(upstream_parse_retry_after("nan") < 0);
}

static void
map(struct apierr *a, long status, const char *body)
{
	apierr_from_http(a, status, body, body ? strlen(body) : 0, NULL, -1);
}

TEST(error_envelopes)
{
	struct apierr a;

	map(&a, 402,
	    "{\"error\":{\"type\":\"billing_error\",\"message\":\"Run limit "
	    "reached.\",\"code\":402,\"request_id\":\"req_x\",\"error_code\":"
	    "\"RUN_LIMIT_REACHED\",\"details\":{\"runs_used\":100}}}");
	ASSERT_STREQ(a.e.code, E_UP_BILLING);
	ASSERT_STREQ(a.e.message, "Run limit reached.");
	ASSERT_STREQ(a.e.request_id, "req_x");
	ASSERT_STREQ(a.e.upstream_code, "RUN_LIMIT_REACHED");
	ASSERT(cJSON_GetObjectItem(a.e.details, "runs_used") != NULL);
	ASSERT(!a.e.retryable);
	apierr_done(&a);
	/* Nested details.error_code only. */
	map(&a, 409, "{\"error\":{\"message\":\"m\",\"details\":{"
		     "\"error_code\":\"run_not_active\"}}}");
	ASSERT_STREQ(a.e.code, E_UP_CONFLICT);
	ASSERT_STREQ(a.e.upstream_code, "run_not_active");
	apierr_done(&a);
	/* String error, detail-only, route not found, HTML, plain text. */
	map(&a, 400, "{\"error\":\"plain string\"}");
	ASSERT_STREQ(a.e.message, "plain string");
	ASSERT_STREQ(a.e.code, E_UP_VALIDATION);
	apierr_done(&a);
	map(&a, 422, "{\"detail\":\"bad field\",\"request_id\":\"req_t\"}");
	ASSERT_STREQ(a.e.message, "bad field");
	ASSERT_STREQ(a.e.request_id, "req_t");
	apierr_done(&a);
	map(&a, 404, "{\"detail\":\"Not Found\"}");
	ASSERT_STREQ(a.e.code, E_UP_ROUTE);
	apierr_done(&a);
	map(&a, 404, "{\"error\":{\"message\":\"Teammate not found\"}}");
	ASSERT_STREQ(a.e.code, E_UP_NOT_FOUND);
	apierr_done(&a);
	map(&a, 502, "<html><body>Bad gateway</body></html>");
	ASSERT_STREQ(a.e.code, E_UP_API);
	ASSERT(a.e.retryable);
	ASSERT(strstr(a.e.message, "HTML") != NULL);
	apierr_done(&a);
	map(&a, 503, NULL);
	ASSERT_STREQ(a.e.message, "HTTP 503");
	apierr_done(&a);
	apierr_from_http(&a, 429, "{}", 2, "req_h", 2.0);
	ASSERT_STREQ(a.e.code, E_UP_RATE_LIMIT);
	ASSERT_STREQ(a.e.request_id, "req_h");
	ASSERT(a.e.retry_after == 2.0);
	apierr_done(&a);
	apierr_from_transport(&a, -ETIMEDOUT, "timed out");
	ASSERT_STREQ(a.e.code, E_UPSTREAM_TIMEOUT);
	apierr_done(&a);
	apierr_from_transport(&a, -ECONNREFUSED, "refused");
	ASSERT_STREQ(a.e.code, E_UNREACHABLE);
	apierr_done(&a);
}

int
main(void)
{
	RUN(retry_eligibility);
	RUN(retry_after);
	RUN(error_envelopes);
	return t_done();
}
