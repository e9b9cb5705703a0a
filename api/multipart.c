/*
 * multipart.c - streaming multipart/form-data parser.
 *
 * DESIGN. One byte-driven state machine: PREAMBLE (discarded) until the
 * first delimiter, then for each part its HEADERS (buffered, bounded) and
 * its BODY (streamed to part_data), until the closing delimiter, after
 * which the EPILOGUE is ignored. The delimiter "\r\n--BOUNDARY" is matched
 * incrementally so it may straddle chunks. Because '\r' occurs only at the
 * delimiter's first position (boundaries cannot contain CR), a failed
 * partial match can restart only at the current byte, and the bytes that
 * were matched are exactly a prefix of the delimiter; so they are emitted
 * from the delimiter itself and nothing but the part headers is ever
 * buffered. The body before the first delimiter is treated as if preceded
 * by CRLF, so "--BOUNDARY" at offset 0 opens the first part (RFC 2046).
 */
#include "config.h"

#include "api/multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum mp_state {
	S_PREAMBLE, S_AFTER_DELIM, S_AD_DASH, S_AD_LWSP, S_AD_CR,
	S_HEADERS, S_BODY, S_EPILOGUE, S_ERROR
};

struct lr_mp {
	lr_mp_callbacks cb;      /* borrowed callbacks */
	void *ud;                /* their argument */
	lr_mp_limits lim;        /* effective limits */
	char delim[LR_MP_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
	size_t dlen;             /* bytes in delim */
	size_t match;            /* delimiter bytes matched so far */
	enum mp_state state;
	int error;               /* sticky error code once in S_ERROR */
	int parts;               /* parts begun */
	int in_part;             /* 1 between part_begin and part_end */
	size_t hlen;             /* bytes in hdr */
	char *hdr;               /* header block, max_header_bytes + 1 */
	char errtext[256];       /* sticky message */
};

void lr_mp_free(lr_mp *p)
{
	if (p == NULL)
		return;
	free(p->hdr);
	free(p);
}

static int bchar(int c)
{
	return isalnum(c) || strchr("'()+_,-./:=? ", c) != NULL;
}

/*
 * Finds parameter `name` in a header value "type; a=b; c="d"" and copies
 * its value (unquoted) into out. Returns 1 found, 0 absent, -1 malformed
 * or duplicate, -2 too long.
 */
static int header_param(const char *v, const char *name, char *out, size_t outlen)
{
	const char *s = strchr(v, ';');
	int found = 0;
	size_t nl = strlen(name);

	while (s != NULL && *s == ';') {
		const char *k;
		size_t kl, o = 0;
		int want;

		s++;
		while (*s == ' ' || *s == '\t')
			s++;
		k = s;
		while (*s && *s != '=' && *s != ';' && *s != ' ' && *s != '\t')
			s++;
		kl = (size_t)(s - k);
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s != '=' || kl == 0)
			return -1;
		s++;
		while (*s == ' ' || *s == '\t')
			s++;
		want = kl == nl && strncasecmp(k, name, nl) == 0;
		if (want && found)
			return -1;
		if (*s == '"') {
			s++;
			while (*s && *s != '"') {
				if (*s == '\\' && s[1] != '\0')
					s++;
				if (want) {
					if (o + 1 >= outlen)
						return -2;
					out[o++] = *s;
				}
				s++;
			}
			if (*s != '"')
				return -1;
			s++;
		} else {
			const char *b = s;

			while (*s && *s != ';' && *s != ' ' && *s != '\t')
				s++;
			if (s == b)
				return -1;
			if (want) {
				if ((size_t)(s - b) >= outlen)
					return -2;
				memcpy(out, b, (size_t)(s - b));
				o = (size_t)(s - b);
			}
		}
		if (want) {
			out[o] = '\0';
			found = 1;
		}
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s != '\0' && *s != ';')
			return -1;
	}
	return found;
}

int lr_mp_new(const char *content_type, const lr_mp_limits *limits,
	      const lr_mp_callbacks *cb, void *ud, lr_mp **out, lr_msg *msg)
{
	static const char type[] = "multipart/form-data";
	char b[LR_MP_MAX_BOUNDARY + 2];
	lr_mp *p = NULL;
	size_t bl;
	int rc;

	*out = NULL;
	if (content_type == NULL ||
	    strncasecmp(content_type, type, sizeof(type) - 1) != 0 ||
	    (content_type[sizeof(type) - 1] != ';' && content_type[sizeof(type) - 1] != ' ' &&
	     content_type[sizeof(type) - 1] != '\0'))
		return lr_fail(msg, LR_EINVAL, "Content-Type: expected multipart/form-data");
	rc = header_param(content_type, "boundary", b, sizeof(b));
	if (rc <= 0)
		return lr_fail(msg, LR_EINVAL,
			       rc == 0 ? "Content-Type: the boundary parameter is missing"
				       : "Content-Type: the boundary parameter is malformed or longer than 70 characters");
	bl = strlen(b);
	if (bl == 0 || bl > LR_MP_MAX_BOUNDARY || b[bl - 1] == ' ')
		return lr_fail(msg, LR_EINVAL, "Content-Type: the boundary must have 1 to 70 characters");
	for (size_t i = 0; i < bl; i++)
		if (!bchar((unsigned char)b[i]))
			return lr_fail(msg, LR_EINVAL,
				       "Content-Type: the boundary has a character RFC 2046 does not allow");
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return LR_ENOMEM;
	p->cb = *cb;
	p->ud = ud;
	p->lim.max_parts = limits && limits->max_parts > 0 ? limits->max_parts : 8;
	p->lim.max_header_bytes = limits && limits->max_header_bytes > 0
					  ? limits->max_header_bytes : 4096;
	p->hdr = malloc(p->lim.max_header_bytes + 1);
	if (p->hdr == NULL) {
		lr_mp_free(p);
		return LR_ENOMEM;
	}
	memcpy(p->delim, "\r\n--", 4);
	memcpy(p->delim + 4, b, bl);
	p->dlen = 4 + bl;
	p->match = 2; /* the body start counts as a preceding CRLF */
	p->state = S_PREAMBLE;
	*out = p;
	return 0;
}

static int fail(lr_mp *p, int code, lr_msg *msg, const char *text)
{
	if (p->state != S_ERROR) {
		p->state = S_ERROR;
		p->error = code;
		snprintf(p->errtext, sizeof(p->errtext), "%s", text);
	}
	return lr_fail(msg, p->error, "%s", p->errtext);
}

/* Parses the buffered header block (lines ending CRLF, then CRLF). */
static int headers_done(lr_mp *p, lr_msg *msg)
{
	char name[256], filename[256], ctype[128];
	int have_cd = 0, have_ct = 0, have_fn = 0, rc;
	char *line = p->hdr, *end = p->hdr + p->hlen - 2; /* drop final CRLF */

	p->hdr[p->hlen] = '\0';
	for (char *q = p->hdr; q < end; q++)
		if (((unsigned char)*q < 0x20 && *q != '\t' && *q != '\r' && *q != '\n') ||
		    *q == 0x7f)
			return fail(p, LR_EINVAL, msg, "multipart: a part header has a control character");
	while (line < end) {
		char *eol = strstr(line, "\r\n"), *colon, *v;

		*eol = '\0';
		colon = strchr(line, ':');
		if (colon == NULL || colon == line || line[0] == ' ' || line[0] == '\t')
			return fail(p, LR_EINVAL, msg, "multipart: a part header line is not 'Name: value'");
		*colon = '\0';
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strcasecmp(line, "Content-Disposition") == 0) {
			if (have_cd++)
				return fail(p, LR_EINVAL, msg, "multipart: a part has two Content-Disposition headers");
			if (strncasecmp(v, "form-data", 9) != 0 ||
			    (v[9] != ';' && v[9] != ' ' && v[9] != '\0'))
				return fail(p, LR_EINVAL, msg, "multipart: Content-Disposition must be form-data");
			rc = header_param(v, "name", name, sizeof(name));
			if (rc <= 0 || name[0] == '\0')
				return fail(p, LR_EINVAL, msg,
					    rc == -2 ? "multipart: a part name is longer than 255 bytes"
						     : "multipart: Content-Disposition has no valid name parameter");
			rc = header_param(v, "filename", filename, sizeof(filename));
			if (rc < 0)
				return fail(p, LR_EINVAL, msg, "multipart: the filename parameter is malformed or too long");
			have_fn = rc == 1;
		} else if (strcasecmp(line, "Content-Type") == 0) {
			if (have_ct++ || strlen(v) >= sizeof(ctype))
				return fail(p, LR_EINVAL, msg, "multipart: a part's Content-Type is repeated or too long");
			strcpy(ctype, v);
		}
		line = eol + 2;
	}
	if (!have_cd)
		return fail(p, LR_EINVAL, msg, "multipart: a part has no Content-Disposition header");
	if (++p->parts > p->lim.max_parts)
		return fail(p, LR_ELIMIT, msg, "multipart: too many parts");
	rc = p->cb.part_begin ? p->cb.part_begin(p->ud, name, have_fn ? filename : NULL,
						  have_ct ? ctype : NULL) : 0;
	if (rc != 0)
		return fail(p, rc, msg, "multipart: part refused");
	p->in_part = 1;
	p->state = S_BODY;
	p->match = 0;
	return 0;
}

static int emit(lr_mp *p, const char *d, size_t n, lr_msg *msg)
{
	int rc;

	if (p->state != S_BODY || n == 0 || p->cb.part_data == NULL)
		return 0;
	rc = p->cb.part_data(p->ud, d, n);
	return rc ? fail(p, rc, msg, "multipart: part data refused") : 0;
}

int lr_mp_feed(lr_mp *p, const char *data, size_t len, lr_msg *msg)
{
	size_t i = 0, run = 0;
	int rc;

	if (p->state == S_ERROR)
		return lr_fail(msg, p->error, "%s", p->errtext);
	while (i < len) {
		unsigned char c = (unsigned char)data[i];

		switch (p->state) {
		case S_PREAMBLE:
		case S_BODY:
			if (p->match == 0 && c != '\r') {
				const char *cr = memchr(data + i, '\r', len - i);

				i = cr ? (size_t)(cr - data) : len;
				continue;
			}
			if (c == (unsigned char)p->delim[p->match]) {
				if (p->match == 0 && (rc = emit(p, data + run, i - run, msg)) != 0)
					return rc;
				i++;
				if (++p->match < p->dlen)
					continue;
				/* A whole delimiter. */
				p->match = 0;
				if (p->in_part) {
					p->in_part = 0;
					rc = p->cb.part_end ? p->cb.part_end(p->ud) : 0;
					if (rc != 0)
						return fail(p, rc, msg, "multipart: part refused");
				}
				p->state = S_AFTER_DELIM;
				continue;
			}
			/* A false start: the matched bytes were data. */
			if (p->match > 0) {
				if ((rc = emit(p, p->delim, p->match, msg)) != 0)
					return rc;
				p->match = 0;
				run = i;
				continue; /* re-examine c at match 0 */
			}
			i++;
			break;
		case S_AFTER_DELIM:
			i++;
			if (c == '-')
				p->state = S_AD_DASH;
			else if (c == ' ' || c == '\t')
				p->state = S_AD_LWSP;
			else if (c == '\r')
				p->state = S_AD_CR;
			else
				return fail(p, LR_EINVAL, msg, "multipart: a boundary line is followed by junk");
			break;
		case S_AD_DASH:
			i++;
			if (c != '-')
				return fail(p, LR_EINVAL, msg, "multipart: a boundary line is followed by junk");
			p->state = S_EPILOGUE;
			break;
		case S_AD_LWSP:
			i++;
			if (c == '\r')
				p->state = S_AD_CR;
			else if (c != ' ' && c != '\t')
				return fail(p, LR_EINVAL, msg, "multipart: a boundary line is followed by junk");
			break;
		case S_AD_CR:
			i++;
			if (c != '\n')
				return fail(p, LR_EINVAL, msg, "multipart: a boundary line does not end in CRLF");
			p->state = S_HEADERS;
			p->hlen = 0;
			break;
		case S_HEADERS:
			i++;
			if (p->hlen >= p->lim.max_header_bytes)
				return fail(p, LR_ELIMIT, msg, "multipart: a part's headers are too long");
			p->hdr[p->hlen++] = (char)c;
			if (c == '\n' && p->hlen >= 2 && p->hdr[p->hlen - 2] == '\r' &&
			    (p->hlen == 2 || (p->hlen >= 4 && memcmp(p->hdr + p->hlen - 4, "\r\n\r\n", 4) == 0))) {
				if ((rc = headers_done(p, msg)) != 0)
					return rc;
				run = i;
			} else if (c == '\n' && (p->hlen < 2 || p->hdr[p->hlen - 2] != '\r')) {
				return fail(p, LR_EINVAL, msg, "multipart: a part header line does not end in CRLF");
			}
			break;
		case S_EPILOGUE:
			i = len;
			break;
		case S_ERROR:
			return lr_fail(msg, p->error, "%s", p->errtext);
		}
	}
	/* Flush the data run unless a delimiter match is pending. */
	if ((p->state == S_BODY) && p->match == 0 && run < len)
		return emit(p, data + run, len - run, msg);
	return 0;
}

int lr_mp_finish(lr_mp *p, lr_msg *msg)
{
	if (p->state == S_ERROR)
		return lr_fail(msg, p->error, "%s", p->errtext);
	if (p->state != S_EPILOGUE)
		return fail(p, LR_EINVAL, msg,
			    p->parts == 0 ? "multipart: no part found (wrong boundary?)"
					  : "multipart: the body ends before the closing boundary");
	return 0;
}
