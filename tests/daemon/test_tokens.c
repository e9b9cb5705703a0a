/* test_tokens.c - the tokens file: parsing, refusals with line numbers,
 * and lookups by token. */
#include "config.h"

#include <string.h>

#include "api/tokens.h"
#include "tests/unit/tap.h"

static int parse(const char *text, lr_tokens **t, lr_msg *m)
{
	memset(m, 0, sizeof(*m));
	return lr_tokens_parse(text, strlen(text), "tok", t, m);
}

int main(void)
{
	lr_tokens *t = NULL;
	lr_msg m;
	char text[1024];
	/* Known vectors: sha256("abc") and sha256(""). */
	const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	const char *empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	int rc;

	snprintf(text, sizeof(text), "# comment\n\nalice %s\r\n  bob\t%s  \n", abc, empty);
	rc = parse(text, &t, &m);
	tap_ok(rc == 0 && lr_tokens_count(t) == 2, "two tokens parse (%s)", m.text);
	tap_ok(t && lr_tokens_check(t, "abc", 3) && strcmp(lr_tokens_check(t, "abc", 3), "alice") == 0,
	       "token 'abc' is alice");
	tap_ok(t && lr_tokens_check(t, "", 0) && strcmp(lr_tokens_check(t, "", 0), "bob") == 0,
	       "the empty token is bob");
	tap_ok(t && lr_tokens_check(t, "abd", 3) == NULL, "a wrong token is nobody");
	tap_ok(lr_tokens_check(NULL, "abc", 3) == NULL, "no tokens: nobody");
	lr_tokens_free(t);

	snprintf(text, sizeof(text), "alice %s\nbob %s\n", abc, abc);
	rc = parse(text, &t, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "tok:2:") && strstr(m.text, "twice"),
	       "a hash listed twice is refused with its line (%s)", m.text);
	rc = parse("alice 1234\n", &t, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "tok:1:") && strstr(m.text, "64 hex"),
	       "a short hash is refused (%s)", m.text);
	snprintf(text, sizeof(text), "al/ice %s\n", abc);
	rc = parse(text, &t, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "TENANT"), "a bad tenant name is refused (%s)", m.text);
	snprintf(text, sizeof(text), "alice %s extra\n", abc);
	rc = parse(text, &t, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "after the hash"), "extra fields are refused (%s)", m.text);
	snprintf(text, sizeof(text), "%s %s\n",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", abc);
	rc = parse(text, &t, &m);
	tap_ok(rc == LR_EINVAL, "a tenant name over 63 characters is refused");
	rc = parse("", &t, &m);
	tap_ok(rc == 0 && lr_tokens_count(t) == 0, "an empty file has no tokens");
	lr_tokens_free(t);
	rc = lr_tokens_load("/nonexistent/tokens", &t, &m);
	tap_ok(rc == -ENOENT, "a missing file is -ENOENT");
	return tap_done();
}
