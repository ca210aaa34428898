/* timer.h — wall-clock time and a progress reporter for long loops.
 *
 * progress_* draws a bar with rate and ETA on stderr when stderr is a terminal, and otherwise
 * prints one plain line at most every `plain_every_s` seconds (logs and CI stay readable).
 * Deliberately left out: nested bars beyond the two levels a sweep needs.
 */
#ifndef CLIPLAB_TIMER_H
#define CLIPLAB_TIMER_H

double time_now(void); /* monotonic seconds */
/* CPU seconds of this process, every thread: on a loaded machine a part's share of a run's CPU
 * time is steadier than its share of the wall time, which waits for the other jobs. */
double time_cpu(void);

typedef struct {
    const char *label; /* e.g. "train", "sweep" */
    const char *unit;  /* e.g. "img" */
    double total;      /* units expected; <= 0 means unknown */
    double start_s;
    double last_print_s;
    double plain_every_s;
    int is_tty;
    int line_open; /* a \r-bar is on screen and needs a newline before other output */
} Progress;

/* Plain lines even on a terminal (e.g. several processes share it). */
void progress_force_plain(int on);
void progress_start(Progress *p, const char *label, const char *unit, double total);
/* done = units so far; extra = short text appended (e.g. "loss 3.21"), may be NULL. */
void progress_update(Progress *p, double done, const char *extra);
void progress_finish(Progress *p, double done, const char *extra);

#endif
