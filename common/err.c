#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void err_clear(struct err *e)
{
	if (!e)
		return;
	e->code = 0;
	e->sys_errno = 0;
	e->msg[0] = '\0';
	e->hint[0] = '\0';
}

static int err_vset(struct err *e, int code, int sys, const char *fmt, va_list ap)
{
	if (!e)
		return code;
	e->code = code;
	e->sys_errno = sys;
	e->hint[0] = '\0';
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	if (sys) {
		size_t n = strlen(e->msg);
		snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(sys));
	}
	return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(e, code, 0, fmt, ap);
	va_end(ap);
	return code;
}

int err_sys(struct err *e, int code, const char *fmt, ...)
{
	int sys = errno;
	va_list ap;
	if (sys == ENOSPC || sys == EDQUOT)
		code = ERR_NOSPC;
	va_start(ap, fmt);
	err_vset(e, code, sys, fmt, ap);
	va_end(ap);
	if (e && code == ERR_NOSPC && !e->hint[0])
		err_hint(e, "free space on that filesystem (or move the zone), then run the command again; nothing was recorded");
	return code;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	char pre[ERR_MSG_MAX];
	char old[ERR_MSG_MAX];
	va_list ap;
	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	snprintf(e->msg, sizeof e->msg, "%s: %s", pre, old);
}

void err_hint(struct err *e, const char *fmt, ...)
{
	va_list ap;
	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(e->hint, sizeof e->hint, fmt, ap);
	va_end(ap);
}

const char *err_name(int code)
{
	switch (code) {
	case ERR_OK: return "ok";
	case ERR_IO: return "io";
	case ERR_NOMEM: return "nomem";
	case ERR_CORRUPT: return "corrupt";
	case ERR_AUTH: return "auth";
	case ERR_NOTFOUND: return "notfound";
	case ERR_EXISTS: return "exists";
	case ERR_CONFIG: return "config";
	case ERR_USAGE: return "usage";
	case ERR_LOCKED: return "locked";
	case ERR_NOSPC: return "nospc";
	case ERR_DB: return "db";
	case ERR_CRYPTO: return "crypto";
	case ERR_INTERNAL: return "internal";
	}
	return "unknown";
}
