/*
 * test_hooks.c - the delivery thread's retry schedule (daemon/hooks.c):
 * delays double from webhook_retry_base_ms, stay within equal jitter
 * (half fixed, half random), are capped at an hour, and the same
 * webhook_jitter_seed gives the same schedule (reproducible tests) while
 * another seed does not. The thread runs on an empty store meanwhile and
 * stops cleanly.
 */
#include "config.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/webhook.h"
#include "daemon/daemon.h"
#include "tests/unit/store_testlib.h"
#include "tests/unit/tap.h"

static lr_hooks *start(const char *dir, uint64_t seed)
{
	static const uint8_t key[32] = { 1, 2, 3 };
	lr_hooks_opts o;
	lr_hooks *h = NULL;
	lr_msg m = { { 0 } };

	memset(&o, 0, sizeof(o));
	o.state_dir = dir;
	o.key = key;
	o.keylen = sizeof(key);
	o.timeout_ms = 1000;
	o.retry_base_ms = 5000;
	o.seed = seed;
	if (lr_hooks_start(&o, &h, &m) != 0)
		tap_diag("start: %s", m.text);
	return h;
}

int main(void)
{
	char *dir = t_mkdtemp();
	lr_hooks *a, *b, *c;
	int64_t sa[20], sb[20], sc[20];
	int in_range = 1, same = 1, differ = 0;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	a = start(dir, 42);
	b = start(dir, 42);
	c = start(dir, 43);
	if (!tap_ok(a && b && c, "three delivery threads start")) {
		lr_hooks_stop(a);
		lr_hooks_stop(b);
		lr_hooks_stop(c);
		return tap_done();
	}
	for (int n = 1; n <= 20; n++) {
		int64_t full = 5000;

		for (int i = 1; i < n && full < 3600000; i++)
			full *= 2;
		if (full > 3600000)
			full = 3600000;
		sa[n - 1] = lr_hooks_backoff_ms(a, n);
		sb[n - 1] = lr_hooks_backoff_ms(b, n);
		sc[n - 1] = lr_hooks_backoff_ms(c, n);
		if (sa[n - 1] < full / 2 || sa[n - 1] > full)
			in_range = 0;
		same &= sa[n - 1] == sb[n - 1];
		differ |= sa[n - 1] != sc[n - 1];
	}
	tap_ok(in_range, "retry n waits between half and all of 5 s * 2^(n-1), capped at 1 h "
		       "(n=1: %lld ms, n=5: %lld ms, n=20: %lld ms)",
	       (long long)sa[0], (long long)sa[4], (long long)sa[19]);
	tap_ok(sa[19] >= 1800000 && sa[19] <= 3600000, "the cap: at most an hour apart");
	tap_ok(same, "the same seed gives the same schedule");
	tap_ok(differ, "another seed gives another one");
	lr_hooks_stop(a);
	lr_hooks_stop(b);
	lr_hooks_stop(c);
	tap_ok(1, "the threads stop");
	curl_global_cleanup();
	t_rmrf(dir);
	free(dir);
	return tap_done();
}
