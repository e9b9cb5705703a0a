/*
 * ui.c - the dashboard's static files: `/` and `/ui` redirect to `/ui/`,
 * `/ui/` and `/ui/jobs/{id}` answer the one-page app's HTML, and
 * `/ui/app.js`, `/ui/app.css`, `/ui/favicon.svg` and `/ui/chart.min.js`
 * its assets.
 *
 * DESIGN. The files are compiled into the binary (the .incbin below reads
 * api/ui/ and Chart.js, whose path configure found: Debian's libjs-chart.js
 * by default), so a lowrankd binary always serves the dashboard it was
 * built with, from memory, and works offline and out of any tree. These
 * routes need no token: they hold no job data, and the app asks for the
 * token itself and sends it on its API calls (server.c answers them as
 * usual). Every answer carries a strict Content-Security-Policy (scripts,
 * styles, images and connections from this origin only, no inline script
 * or style, no framing), nosniff, its exact Content-Type, and a strong
 * ETag (the first 128 bits of the file's SHA-256, computed once) with
 * Cache-Control: no-cache, so browsers revalidate and get 304s.
 */
#include "config.h"

#include "api/ui.h"

#include <nettle/sha2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The files, compiled in (LR_UI_DIR and LR_CHARTJS_PATH come from
 * api/Makefile.inc and configure). */
#define LR_UI_INCBIN(sym, path)                                      \
	".global " #sym "\n.type " #sym ", @object\n.balign 16\n" #sym ":\n" \
	".incbin \"" path "\"\n.global " #sym "_end\n" #sym "_end:\n.byte 0\n"
__asm__(".section .rodata\n"
	LR_UI_INCBIN(lr_ui_index_html, LR_UI_DIR "/index.html")
	LR_UI_INCBIN(lr_ui_app_js, LR_UI_DIR "/app.js")
	LR_UI_INCBIN(lr_ui_app_css, LR_UI_DIR "/app.css")
	LR_UI_INCBIN(lr_ui_favicon_svg, LR_UI_DIR "/favicon.svg")
	LR_UI_INCBIN(lr_ui_chart_js, LR_CHARTJS_PATH)
	".previous\n");
extern const char lr_ui_index_html[], lr_ui_index_html_end[];
extern const char lr_ui_app_js[], lr_ui_app_js_end[];
extern const char lr_ui_app_css[], lr_ui_app_css_end[];
extern const char lr_ui_favicon_svg[], lr_ui_favicon_svg_end[];
extern const char lr_ui_chart_js[], lr_ui_chart_js_end[];

#define LR_UI_CSP                                                            \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " \
	"frame-ancestors 'none'"

struct lr_ui_file {
	const char *path;         /* URL path; "" for the job page pattern */
	const char *route_name;   /* path template for logs */
	const char *ctype;        /* Content-Type */
	const char *data;         /* contents (NULL: a redirect to /ui/) */
	const char *end;          /* one past them */
	char etag[35];            /* "<32 hex>", set once by etags_init() */
};

static struct lr_ui_file files[] = {
	{ "/", "/", NULL, NULL, NULL, "" },
	{ "/ui", "/ui", NULL, NULL, NULL, "" },
	{ "/ui/", "/ui/", "text/html; charset=utf-8", lr_ui_index_html, lr_ui_index_html_end, "" },
	{ "", "/ui/jobs/{id}", "text/html; charset=utf-8", lr_ui_index_html, lr_ui_index_html_end, "" },
	{ "/ui/app.js", "/ui/app.js", "text/javascript; charset=utf-8", lr_ui_app_js,
	  lr_ui_app_js_end, "" },
	{ "/ui/app.css", "/ui/app.css", "text/css; charset=utf-8", lr_ui_app_css,
	  lr_ui_app_css_end, "" },
	{ "/ui/favicon.svg", "/ui/favicon.svg", "image/svg+xml", lr_ui_favicon_svg,
	  lr_ui_favicon_svg_end, "" },
	{ "/ui/chart.min.js", "/ui/chart.min.js", "text/javascript; charset=utf-8",
	  lr_ui_chart_js, lr_ui_chart_js_end, "" },
};
#define NFILES (sizeof(files) / sizeof(files[0]))
#define JOB_PAGE 3 /* index of the /ui/jobs/{id} entry */

static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void etags_init(void)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < NFILES; i++) {
		struct sha256_ctx c;
		uint8_t dg[SHA256_DIGEST_SIZE];
		char *e = files[i].etag;

		if (files[i].data == NULL)
			continue;
		sha256_init(&c);
		sha256_update(&c, (size_t)(files[i].end - files[i].data),
			      (const uint8_t *)files[i].data);
		sha256_digest(&c, sizeof(dg), dg);
		*e++ = '"';
		for (int k = 0; k < 16; k++) {
			*e++ = hex[dg[k] >> 4];
			*e++ = hex[dg[k] & 15];
		}
		*e++ = '"';
		*e = '\0';
	}
}

const lr_ui_file *lr__ui_lookup(const char *url)
{
	static const char jobs[] = "/ui/jobs/";

	if (strncmp(url, jobs, sizeof(jobs) - 1) == 0)
		return lr_store_id_valid(url + sizeof(jobs) - 1) ? &files[JOB_PAGE] : NULL;
	for (size_t i = 0; i < NFILES; i++)
		if (files[i].path[0] != '\0' && strcmp(url, files[i].path) == 0)
			return &files[i];
	return NULL;
}

const char *lr__ui_route_name(const lr_ui_file *f)
{
	return f->route_name;
}

/* 1 when an If-None-Match list names `etag` (or is "*"). */
static int etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag);

	if (inm == NULL)
		return 0;
	for (const char *p = inm; *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p == '*' || strncmp(p, etag, n) == 0)
			return 1;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return 0;
}

static void add_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", LR_UI_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

enum MHD_Result lr__ui_serve(lr_req *r, const lr_ui_file *f)
{
	struct MHD_Response *resp;
	const char *inm;

	pthread_once(&etags_once, etags_init);
	if (f->data == NULL) { /* / and /ui */
		static const char body[] = "See /ui/\n";

		resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
						       MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return MHD_NO;
		add_headers(resp);
		MHD_add_response_header(resp, "Location", "/ui/");
		MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		return lr__api_queue(r, 302, resp);
	}
	inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
	if (etag_matches(inm, f->etag)) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return MHD_NO;
		add_headers(resp);
		MHD_add_response_header(resp, "ETag", f->etag);
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		return lr__api_queue(r, 304, resp);
	}
	resp = MHD_create_response_from_buffer((size_t)(f->end - f->data), (void *)f->data,
					       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	add_headers(resp);
	MHD_add_response_header(resp, "Content-Type", f->ctype);
	MHD_add_response_header(resp, "ETag", f->etag);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	return lr__api_queue(r, 200, resp);
}
