/* timer.c — monotonic clock and the terminal/plain progress reporter (see timer.h). */
#include "timer.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double time_now(void) { return clock_seconds(CLOCK_MONOTONIC); }

double time_cpu(void) { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

static int force_plain;

void progress_force_plain(int on) { force_plain = on; }

void progress_start(Progress *p, const char *label, const char *unit, double total) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start_s = time_now();
    p->last_print_s = 0.0;
    p->plain_every_s = 5.0;
    p->is_tty = !force_plain && isatty(2);
    p->line_open = 0;
}

static void format_eta(char *buf, size_t n, double seconds) {
    if (seconds < 0 || seconds > 1e7) {
        snprintf(buf, n, "--:--");
        return;
    }
    int s = (int)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, n, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    else snprintf(buf, n, "%02d:%02d", s / 60, s % 60);
}

static void progress_print(Progress *p, double done, const char *extra, int final) {
    double now = time_now();
    double elapsed = now - p->start_s;
    double rate = elapsed > 0 ? done / elapsed : 0.0;
    double frac = p->total > 0 ? done / p->total : 0.0;
    if (frac > 1) frac = 1;
    char eta[32];
    format_eta(eta, sizeof eta, (p->total > 0 && rate > 0) ? (p->total - done) / rate : -1);
    if (p->is_tty) {
        char bar[31];
        int filled = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%s [%s] %5.1f%% %.0f %s/s ETA %s %s\033[K", p->label, bar, 100 * frac,
                rate, p->unit, eta, extra ? extra : "");
        p->line_open = 1;
        if (final) {
            fputc('\n', stderr);
            p->line_open = 0;
        }
    } else {
        fprintf(stderr, "%s: %.0f/%.0f %s (%.1f%%) %.0f %s/s ETA %s %s\n", p->label, done, p->total,
                p->unit, 100 * frac, rate, p->unit, eta, extra ? extra : "");
    }
    fflush(stderr);
    p->last_print_s = now;
}

void progress_update(Progress *p, double done, const char *extra) {
    double now = time_now();
    double every = p->is_tty ? 0.1 : p->plain_every_s;
    if (now - p->last_print_s >= every) progress_print(p, done, extra, 0);
}

void progress_finish(Progress *p, double done, const char *extra) { progress_print(p, done, extra, 1); }
