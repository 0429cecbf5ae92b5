/*
 * pqload.h: libpq, loaded when it is first called instead of when pgtimefs starts.
 *
 * Most runs of pgtimefs never talk to a server: wal-push (archive_command, one process per
 * WAL segment), wal-fetch, mount, ls, cat. Linked in, libpq brings about seventeen libraries
 * (Kerberos, LDAP, SASL, GnuTLS and theirs) whose loading and constructors cost each start
 * about 3.5 ms, a tenth of a wal-push (docs/design-notes.md, "wal-push latency"). So the
 * libpq functions pgtimefs uses are called through pointers that pgt_pq() fills from
 * dlopen(PGT_LIBPQ_SONAME) on the first call; the names stay libpq's own (macros below), so
 * the calling code reads as plain libpq. Include this header instead of <libpq-fe.h>.
 *
 * A missing libpq is reported on the first call (what to install) and exits 1: nothing that
 * calls libpq can go on without it. Thread-safe (pthread_once).
 */
#ifndef PGTIMEFS_BACKUP_PQLOAD_H
#define PGTIMEFS_BACKUP_PQLOAD_H

#include <libpq-fe.h>

#ifndef PGT_LIBPQ_SONAME
#define PGT_LIBPQ_SONAME "libpq.so.5"
#endif

/* Every libpq function pgtimefs calls; a call to one not listed fails to link. */
#define PGT_PQ_FUNCS(X)                                                                                      \
	X(PQclear)                                                                                           \
	X(PQconnectdbParams)                                                                                 \
	X(PQconsumeInput)                                                                                    \
	X(PQerrorMessage)                                                                                    \
	X(PQexec)                                                                                            \
	X(PQexecParams)                                                                                      \
	X(PQfinish)                                                                                          \
	X(PQflush)                                                                                           \
	X(PQfreemem)                                                                                         \
	X(PQgetCopyData)                                                                                     \
	X(PQgetResult)                                                                                       \
	X(PQgetisnull)                                                                                       \
	X(PQgetlength)                                                                                       \
	X(PQgetvalue)                                                                                        \
	X(PQisBusy)                                                                                          \
	X(PQnfields)                                                                                         \
	X(PQntuples)                                                                                         \
	X(PQputCopyData)                                                                                     \
	X(PQputCopyEnd)                                                                                      \
	X(PQresStatus)                                                                                       \
	X(PQresultErrorMessage)                                                                              \
	X(PQresultStatus)                                                                                    \
	X(PQsendQuery)                                                                                       \
	X(PQserverVersion)                                                                                   \
	X(PQsetNoticeProcessor)                                                                              \
	X(PQsocket)                                                                                          \
	X(PQstatus)                                                                                          \
	X(PQuser)

struct pgt_pq {
#define PGT_PQ_MEMBER(f) __typeof__(f) *f;
	PGT_PQ_FUNCS(PGT_PQ_MEMBER)
#undef PGT_PQ_MEMBER
};

/* The loaded functions (loads libpq on the first call). */
const struct pgt_pq *pgt_pq(void);

#ifndef PGT_PQLOAD_NO_MACROS
#define PQclear		     (pgt_pq()->PQclear)
#define PQconnectdbParams    (pgt_pq()->PQconnectdbParams)
#define PQconsumeInput	     (pgt_pq()->PQconsumeInput)
#define PQerrorMessage	     (pgt_pq()->PQerrorMessage)
#define PQexec		     (pgt_pq()->PQexec)
#define PQexecParams	     (pgt_pq()->PQexecParams)
#define PQfinish	     (pgt_pq()->PQfinish)
#define PQflush		     (pgt_pq()->PQflush)
#define PQfreemem	     (pgt_pq()->PQfreemem)
#define PQgetCopyData	     (pgt_pq()->PQgetCopyData)
#define PQgetResult	     (pgt_pq()->PQgetResult)
#define PQgetisnull	     (pgt_pq()->PQgetisnull)
#define PQgetlength	     (pgt_pq()->PQgetlength)
#define PQgetvalue	     (pgt_pq()->PQgetvalue)
#define PQisBusy	     (pgt_pq()->PQisBusy)
#define PQnfields	     (pgt_pq()->PQnfields)
#define PQntuples	     (pgt_pq()->PQntuples)
#define PQputCopyData	     (pgt_pq()->PQputCopyData)
#define PQputCopyEnd	     (pgt_pq()->PQputCopyEnd)
#define PQresStatus	     (pgt_pq()->PQresStatus)
#define PQresultErrorMessage (pgt_pq()->PQresultErrorMessage)
#define PQresultStatus	     (pgt_pq()->PQresultStatus)
#define PQsendQuery	     (pgt_pq()->PQsendQuery)
#define PQserverVersion	     (pgt_pq()->PQserverVersion)
#define PQsetNoticeProcessor (pgt_pq()->PQsetNoticeProcessor)
#define PQsocket	     (pgt_pq()->PQsocket)
#define PQstatus	     (pgt_pq()->PQstatus)
#define PQuser		     (pgt_pq()->PQuser)
#endif

#endif
