/* The network floor of a voice call: what the least a real-time sender and
 * receiver of one packet per 20 ms frame costs, with no QUIC, no crypto, no
 * codec and no threads.
 *
 * A call sends one datagram per 20 ms frame each way. Whatever the design,
 * each side must at least wake on its own 20 ms clock to send its frame and
 * wake again when the peer's frame arrives (the two are not in phase: the
 * peers' clocks are independent). This program does exactly that and
 * nothing else, so tests/bench/voice.sh can put it next to the paced codec
 * floor (bench_opus_floor ... paced): together they are what a call costs
 * before any protocol, copying or threading of its own.
 *
 * Two processes (alice and bob, the second forked from the first), each
 * with one UDP socket on 127.0.0.1 and one thread in epoll_wait on a
 * timerfd ticking every 20 ms (bob's ticks 10 ms after alice's) and on the
 * socket. On a tick: one sendto() of SIZE bytes to the peer. On the socket
 * becoming readable: recv() until EAGAIN. CPU is getrusage(RUSAGE_SELF)
 * (user + system) over the SECONDS of ticks; each process prints one line
 *
 *   who=alice udp_cpu_s=... sent=... received=... wakeups=... seconds=...
 *
 *   bench_udp_floor [SECONDS (20)] [SIZE (100)]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FRAME_NS 20000000LL

static int udp__bind(struct sockaddr_in *out) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof(a);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)out, &n) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static double udp__cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* One side: tick, send, receive for `frames` ticks from `start`. */
static int udp__side(const char *who, int fd, const struct sockaddr_in *peer,
                     struct timespec start, long long frames, size_t size) {
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (tfd < 0 || ep < 0)
    return -1;
  struct itimerspec its = {.it_value = start,
                           .it_interval = {0, (long)FRAME_NS}};
  if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
    return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = tfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  ev.data.fd = fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);

  uint8_t out[1500] = {0}, in[1500];
  long long sent = 0, received = 0, wakeups = 0;
  double cpu0 = udp__cpu_s();
  /* One tick more than `frames` lets the peer's last frame arrive. */
  while (sent <= frames) {
    struct epoll_event evs[2];
    int n = epoll_wait(ep, evs, 2, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    wakeups++;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.fd == tfd) {
        uint64_t ticks;
        if (read(tfd, &ticks, sizeof(ticks)) != sizeof(ticks))
          continue;
        memcpy(out, &sent, sizeof(sent));
        if (sendto(fd, out, size, 0, (const struct sockaddr *)peer,
                   sizeof(*peer)) == (ssize_t)size)
          sent++;
        else
          return -1;
      } else {
        while (recv(fd, in, sizeof(in), 0) > 0)
          received++;
      }
    }
  }
  double cpu = udp__cpu_s() - cpu0;
  printf("who=%s udp_cpu_s=%.3f sent=%lld received=%lld wakeups=%lld "
         "seconds=%.1f\n",
         who, cpu, sent, received, wakeups, (double)frames * FRAME_NS / 1e9);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 3 || (argc > 1 && strcmp(argv[1], "--help") == 0)) {
    fprintf(stderr, "usage: bench_udp_floor [SECONDS (20)] [SIZE (100)]\n");
    return 2;
  }
  double seconds = argc > 1 ? atof(argv[1]) : 20;
  long size = argc > 2 ? atol(argv[2]) : 100;
  long long frames = (long long)(seconds * 1e9 / FRAME_NS);
  if (frames <= 0 || size < 8 || size > 1200) {
    fprintf(stderr, "bench_udp_floor: SECONDS > 0, 8 <= SIZE <= 1200\n");
    return 2;
  }
  struct sockaddr_in a, b;
  int fa = udp__bind(&a), fb = udp__bind(&b);
  if (fa < 0 || fb < 0) {
    perror("bench_udp_floor: socket");
    return 1;
  }
  /* Both start 100 ms from now; bob half a frame later. */
  struct timespec ta;
  clock_gettime(CLOCK_MONOTONIC, &ta);
  ta.tv_nsec += 100000000L;
  ta.tv_sec += ta.tv_nsec / 1000000000L;
  ta.tv_nsec %= 1000000000L;
  struct timespec tb = ta;
  tb.tv_nsec += (long)(FRAME_NS / 2);
  tb.tv_sec += tb.tv_nsec / 1000000000L;
  tb.tv_nsec %= 1000000000L;

  pid_t pid = fork();
  if (pid < 0) {
    perror("bench_udp_floor: fork");
    return 1;
  }
  if (pid == 0) {
    close(fa);
    return udp__side("bob", fb, &a, tb, frames, (size_t)size) == 0 ? 0 : 1;
  }
  close(fb);
  int rc = udp__side("alice", fa, &b, ta, frames, (size_t)size);
  int st = 0;
  waitpid(pid, &st, 0);
  if (rc != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "bench_udp_floor: a side failed\n");
    return 1;
  }
  return 0;
}
