/*
 * lr.c - error messages, assertions and small process utilities shared by
 * all modules. See lr.h for the error convention.
 */
#include "config.h"

#include "model/lr.h"

#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int lr_fail(lr_msg *m, int code, const char *fmt, ...)
{
	va_list ap;

	if (m == NULL || m->text[0] != '\0')
		return code;
	va_start(ap, fmt);
	vsnprintf(m->text, sizeof(m->text), fmt, ap);
	va_end(ap);
	return code;
}

void lr_msg_prefix(lr_msg *m, const char *fmt, ...)
{
	char pre[512];
	size_t pl, tl;
	va_list ap;

	if (m == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	pl = strlen(pre);
	if (pl + 3 >= sizeof(m->text))
		return;
	tl = strlen(m->text);
	if (tl > sizeof(m->text) - pl - 3)
		tl = sizeof(m->text) - pl - 3;
	memmove(m->text + pl + 2, m->text, tl);
	m->text[pl + 2 + tl] = '\0';
	memcpy(m->text, pre, pl);
	m->text[pl] = ':';
	m->text[pl + 1] = ' ';
}

const char *lr_strerror(int code)
{
	switch (code) {
	case LR_OK: return "success";
	case LR_EMODEL: return "malformed ONNX model";
	case LR_EUNSUPPORTED: return "unsupported model feature";
	case LR_ESHAPE: return "tensor shape mismatch";
	case LR_ENPY: return "malformed or unsupported .npy file";
	case LR_ELAPACK: return "LAPACK failure";
	case LR_ENUMERIC: return "numerical failure";
	case LR_ECANCELED: return "canceled";
	case LR_ELIMIT: return "limit exceeded";
	default:
		if (code < 0 && code > -4096)
			return strerror(-code);
		return "unknown error";
	}
}

void lr_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "lowrank: assertion failed: %s (%s:%d)\n", expr, file,
		line);
	abort();
}

double lr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t lr_peak_rss_bytes(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (size_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}

static char build_id[40];
static pthread_once_t build_id_once = PTHREAD_ONCE_INIT;

/* dl_iterate_phdr callback: the first object is the program itself. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *ud)
{
	(void)size;
	(void)ud;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const unsigned char *p, *end;

		if (ph->p_type != PT_NOTE)
			continue;
		p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
			const unsigned char *name = p + sizeof(*nh);
			const unsigned char *desc = name + ((nh->n_namesz + 3) & ~3u);

			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0 && nh->n_descsz >= 8) {
				for (unsigned k = 0; k < 8; k++)
					snprintf(build_id + 2 * k, 3, "%02x", desc[k]);
				return 1;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 1; /* only the first object (the program) is looked at */
}

static void build_id_init(void)
{
	dl_iterate_phdr(find_build_id, NULL);
	if (build_id[0] == '\0')
		snprintf(build_id, sizeof(build_id), "v%s", PACKAGE_VERSION);
}

const char *lr_build_id(void)
{
	pthread_once(&build_id_once, build_id_init);
	return build_id;
}
