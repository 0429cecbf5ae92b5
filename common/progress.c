#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "util.h"

void progress_start(struct progress *p, const char *what, uint64_t total, int enabled)
{
	p->on = enabled && isatty(STDERR_FILENO);
	p->what = what;
	p->total = total;
	p->done = 0;
	p->started = util_mono();
	p->last_draw = 0;
}

static void draw(struct progress *p, double now)
{
	char done[24], rate[24];
	double el = now - p->started;
	util_human_bytes(p->done, done, sizeof done);
	util_human_bytes(el > 0 ? (uint64_t)((double)p->done / el) : 0, rate, sizeof rate);
	if (p->total) {
		int pct = (int)(p->done * 100 / (p->total ? p->total : 1));
		int fill = pct * 30 / 100;
		char bar[31];
		if (pct > 100)
			pct = 100, fill = 30;
		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[30] = '\0';
		fprintf(stderr, "\r%s [%s] %3d%% %s  %s/s   ", p->what, bar, pct, done, rate);
	} else {
		fprintf(stderr, "\r%s %s  %s/s   ", p->what, done, rate);
	}
	fflush(stderr);
	p->last_draw = now;
}

void progress_add(struct progress *p, uint64_t n)
{
	double now;
	p->done += n;
	if (!p->on)
		return;
	now = util_mono();
	if (now - p->last_draw >= 0.1)
		draw(p, now);
}

void progress_end(struct progress *p)
{
	if (!p->on)
		return;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	p->on = 0;
}
