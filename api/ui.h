/*
 * ui.h - the dashboard's static files, compiled into lowrankd (api/ui.c).
 * Internal to api/: server.c routes to it.
 */
#ifndef LR_API_UI_H
#define LR_API_UI_H

#include "api/api-int.h"

/* One compiled-in file, or a redirect to /ui/. */
typedef struct lr_ui_file lr_ui_file;

/* Returns the dashboard resource for the URL path `url` (no query), or NULL
 * when it is not one. Matches /, /ui, /ui/, /ui/jobs/{id} (a valid job id)
 * and the assets; the result is static and never freed. */
const lr_ui_file *lr__ui_lookup(const char *url);

/* The path template of `f`, for logs. */
const char *lr__ui_route_name(const lr_ui_file *f);

/* Answers a GET or HEAD of `f` on `r`: 302 to /ui/ for a redirect, 304
 * when If-None-Match names its ETag, else 200 with the file; each with the
 * dashboard's security headers (Content-Security-Policy, nosniff, no
 * framing). Returns MHD_YES or MHD_NO like every handler. */
enum MHD_Result lr__ui_serve(lr_req *r, const lr_ui_file *f);

#endif /* LR_API_UI_H */
