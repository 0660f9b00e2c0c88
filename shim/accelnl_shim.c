// accelnl preload shim (LD_PRELOAD, set up by `accel wrap`): a program's NETLINK_GENERIC sockets
// become NETLINK_USERSOCK sockets that talk to the accelnl daemon's port instead of the kernel.
//
// What it changes, and only on sockets it created (other netlink protocols and every other socket
// pass through untouched):
//  - socket(AF_NETLINK, *, NETLINK_GENERIC) opens NETLINK_USERSOCK;
//  - a send with no destination, or to the kernel (nl_pid 0, no groups), goes to the daemon's port
//    (send, sendto, sendmsg, sendmmsg, write, writev, connect); dup, dup2, dup3 and fcntl's
//    F_DUPFD copy a socket's redirect, close ends it;
//  - what comes from the daemon's port is reported as from the kernel (nl_pid 0) by recvfrom and
//    recvmsg (and their _chk and mmsg forms): iproute2 drops replies "not from the kernel";
//  - bind(nl_pid 0) on a socket that is already bound keeps its port (the kernel's answer would be
//    EINVAL; we may have bound it by sending the EXT_ACK control message below);
//  - setsockopt(SOL_NETLINK, NETLINK_EXT_ACK) is also told to the daemon, which cannot see it in
//    sock_diag: one ACCELNL_MSG_SOCKOPT control message (type 0x0f, no ACK, payload u32 optname,
//    u32 value), sent before the socket's next request;
//  - NETLINK_ADD/DROP_MEMBERSHIP (and bind's nl_groups) become the same control message, asking
//    the daemon to deliver that group to this socket by unicast: USERSOCK lets only CAP_NET_ADMIN
//    receive multicast, and its groups are shared by every daemon on the host (each numbers its
//    groups the same way), so a joined group would also bring other daemons' events;
//  - getsockopt(SO_PROTOCOL) says NETLINK_GENERIC;
//  - the length a read asks for is told to the daemon when it is the largest yet (capped at
//    32448), as the kernel records it in max_recvmsg_len and fills dump datagrams up to it: the
//    same control message, option ACCELNL_OPT_MAX_RECVMSG_LEN (0x10001), sent before the read;
//  - close of a socket that asked one thing at a time and read each answer to its end first
//    tells the daemon so, with its inode: option ACCELNL_OPT_CLOSING (0x10003). The daemon then
//    takes its answers as read, and a socket the program opens next on the same port is no
//    raced send (docs/transport.md). It vouches only when every request it sent asked for a
//    final answer (NLM_F_ACK, or a dump), no second one went out before the first's final
//    answer (NLMSG_ERROR or NLMSG_DONE with its sequence number, from the daemon's port) was
//    read, every final it read was that awaited one, every send and read it saw went through
//    one buffer (a datagram it could parse, from a known sender), and the descriptor was never
//    duplicated or passed (SCM_RIGHTS), the process did not fork while it was open, and it is
//    close-on-exec. Anything else, and close says nothing (the daemon's sweep forgets the
//    socket).
// CAP_ACK, GET_STRICT_CHK, buffer sizes and the rest pass through to the real socket (the daemon
// reads CAP_ACK with sock_diag).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#define ACCELNL_MSG_SOCKOPT 0x0f
#define ACCELNL_OPT_MAX_RECVMSG_LEN 0x10001
#define ACCELNL_OPT_CLOSING 0x10003
#define MAX_RECVMSG_LEN 32448 /* the kernel's cap: SKB_WITH_OVERHEAD(32768) */
#define MAX_FD 65536

// For ACCELNL_OPT_CLOSING (see the top). UNSURE: the socket cannot vouch that it read every
// answer (a request that may get no answer, two at once, a final it did not await, a datagram it
// could not parse). SHARED: duplicated, or inherited by a fork: closing this copy does not close
// the socket. WAITING: one request awaits its final answer, whose sequence number is fd_seq.
// SPOKE: at least one final answer was read. Bits change atomically: threads may share a socket.
enum { REDIRECTED = 1, EXT_ACK_PENDING = 2, UNSURE = 4, SHARED = 8, WAITING = 16, SPOKE = 32 };
static unsigned char fd_state[MAX_FD];
static uint32_t fd_seq[MAX_FD];
static unsigned char fd_ext_ack[MAX_FD];
static uint16_t fd_recv_len[MAX_FD]; /* the largest read length told to the daemon */
static uint32_t daemon_port = 0x41434345;
static int debug;

static int (*real_socket)(int, int, int);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_getsockopt)(int, int, int, void *, socklen_t *);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);

static void *next(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (!f) {
    fprintf(stderr, "accelnl shim: %s not found in libc\n", name);
    abort();
  }
  return f;
}

// Resolved before main by the constructor, and on first use for calls made from other
// libraries' constructors that run before ours.
static void resolve(void) {
  if (real_close) return;
  real_socket = next("socket");
  real_bind = next("bind");
  real_connect = next("connect");
  real_setsockopt = next("setsockopt");
  real_getsockopt = next("getsockopt");
  real_sendto = next("sendto");
  real_sendmsg = next("sendmsg");
  real_sendmmsg = next("sendmmsg");
  real_recvfrom = next("recvfrom");
  real_recvmsg = next("recvmsg");
  real_recvmmsg = next("recvmmsg");
  real_write = next("write");
  real_writev = next("writev");
  real_dup = next("dup");
  real_dup2 = next("dup2");
  real_dup3 = next("dup3");
  real_fcntl = next("fcntl");
  real_fcntl64 = dlsym(RTLD_NEXT, "fcntl64");  // glibc >= 2.28; absent before
  real_close = next("close");
}

static void forked(void);

__attribute__((constructor)) static void init(void) {
  resolve();
  pthread_atfork(forked, forked, forked);  // prepare too: a thread's close during the fork sees it
  const char *p = getenv("ACCEL_NL_PORT");
  if (p && *p) {
    char *end;
    unsigned long v = strtoul(p, &end, 0);
    if (*end == '\0' && v >= 1 && v <= 0xffffffffUL) daemon_port = (uint32_t)v;
    else fprintf(stderr, "accelnl shim: ignoring bad ACCEL_NL_PORT \"%s\"\n", p);
  }
  const char *d = getenv("ACCELNL_SHIM_DEBUG");
  debug = d && *d && strcmp(d, "0") != 0;
}

static void trace(const char *fmt, ...) {
  if (!debug) return;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  (void)!real_write(2, line, n);
}

static int redirected(int fd) {
  return fd >= 0 && fd < MAX_FD && (fd_state[fd] & REDIRECTED);
}

static struct sockaddr_nl daemon_addr(void) {
  struct sockaddr_nl a;
  memset(&a, 0, sizeof a);
  a.nl_family = AF_NETLINK;
  a.nl_pid = daemon_port;
  return a;
}

/** True when a destination means "the kernel": absent, or nl_pid 0 with no groups. */
static int to_kernel(const struct sockaddr *addr, socklen_t len) {
  if (!addr || len < sizeof(struct sockaddr_nl)) return 1;
  const struct sockaddr_nl *nl = (const struct sockaddr_nl *)addr;
  return nl->nl_family == AF_NETLINK && nl->nl_pid == 0 && nl->nl_groups == 0;
}

/** The daemon's port as a source becomes the kernel's (0). */
static void from_daemon(void *addr, socklen_t len) {
  if (!addr || len < sizeof(struct sockaddr_nl)) return;
  struct sockaddr_nl *nl = addr;
  if (nl->nl_family == AF_NETLINK && nl->nl_pid == daemon_port) nl->nl_pid = 0;
}

/** One ACCELNL_MSG_SOCKOPT control message to the daemon. Returns 0 or -1 with errno. */
static int send_sockopt(int fd, uint32_t optname, uint32_t value) {
  // CLOSING never blocks close(): if the daemon's buffer is full, it is dropped (the sweep frees).
  int flags = optname == ACCELNL_OPT_CLOSING ? MSG_DONTWAIT : 0;
  struct { struct nlmsghdr h; uint32_t opt, val; } m;
  memset(&m, 0, sizeof m);
  m.h.nlmsg_len = sizeof m;
  m.h.nlmsg_type = ACCELNL_MSG_SOCKOPT;
  m.opt = optname;
  m.val = value;
  struct sockaddr_nl a = daemon_addr();
  ssize_t r = real_sendto(fd, &m, sizeof m, flags, (struct sockaddr *)&a, sizeof a);
  if (debug) trace("accelnl shim: fd %d: sockopt %u = %u to the daemon: %s", fd, optname, value, r < 0 ? strerror(errno) : "sent");
  return r < 0 ? -1 : 0;
}

/** Before a request: tell the daemon the EXT_ACK setting if it changed since the last request. */
static void flush_pending(int fd) {
  if (!(fd_state[fd] & EXT_ACK_PENDING)) return;
  __atomic_fetch_and(&fd_state[fd], (unsigned char)~EXT_ACK_PENDING, __ATOMIC_SEQ_CST);
  int saved = errno;
  send_sockopt(fd, NETLINK_EXT_ACK, fd_ext_ack[fd]);
  errno = saved;
}

/** A read of up to `n` bytes on fd: the daemon hears of it when it is the largest yet. */
static void note_recv_len(int fd, size_t n) {
  if (!redirected(fd) || fd_recv_len[fd] >= MAX_RECVMSG_LEN || n <= fd_recv_len[fd]) return;
  uint16_t len = n > MAX_RECVMSG_LEN ? MAX_RECVMSG_LEN : (uint16_t)n;
  int saved = errno;
  // Only on a bound socket: the message would bind an unbound one (autobind), and a later
  // bind to a chosen port would then fail. An unbound socket has nothing to read anyway.
  struct sockaddr_nl self;
  socklen_t sl = sizeof self;
  if (getsockname(fd, (struct sockaddr *)&self, &sl) != 0 || self.nl_pid == 0) { errno = saved; return; }
  if (send_sockopt(fd, ACCELNL_OPT_MAX_RECVMSG_LEN, len) == 0) fd_recv_len[fd] = len;
  errno = saved;
}

static void set_bits(int fd, unsigned char bits) { __atomic_fetch_or(&fd_state[fd], bits, __ATOMIC_SEQ_CST); }

/* What a datagram this socket sent asks for (see the top). */
static void note_sent(int fd, const void *buf, size_t n) {
  const unsigned char *p = buf;
  for (size_t at = 0; p && at + sizeof(struct nlmsghdr) <= n;) {
    struct nlmsghdr h;
    memcpy(&h, p + at, sizeof h);
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > n - at) { set_bits(fd, UNSURE); return; }
    int awaits = (h.nlmsg_flags & NLM_F_ACK) || (h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    if (awaits) {
      // The seq first, then the bit: a reader never sees WAITING with an older seq. A second
      // request awaited at once (its seq overwrote the first's) makes the socket unsure.
      __atomic_store_n(&fd_seq[fd], h.nlmsg_seq, __ATOMIC_SEQ_CST);
      if (__atomic_fetch_or(&fd_state[fd], WAITING, __ATOMIC_SEQ_CST) & WAITING) set_bits(fd, UNSURE);
    } else if ((h.nlmsg_flags & NLM_F_REQUEST) && h.nlmsg_type >= NLMSG_MIN_TYPE) {
      set_bits(fd, UNSURE);  // a do without NLM_F_ACK: answered or not, nobody can tell
    }
    at += NLMSG_ALIGN(h.nlmsg_len);
  }
}

/* The final answers in a datagram this socket read from the daemon's port (see the top). */
static void note_read(int fd, const void *buf, size_t n) {
  const unsigned char *p = buf;
  for (size_t at = 0; p && at + sizeof(struct nlmsghdr) <= n;) {
    struct nlmsghdr h;
    memcpy(&h, p + at, sizeof h);
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > n - at) return;  // cut short: the final may be lost
    if (h.nlmsg_type == NLMSG_ERROR || h.nlmsg_type == NLMSG_DONE) {
      unsigned char st = __atomic_load_n(&fd_state[fd], __ATOMIC_SEQ_CST);
      if ((st & WAITING) && __atomic_load_n(&fd_seq[fd], __ATOMIC_SEQ_CST) == h.nlmsg_seq) {
        __atomic_fetch_and(&fd_state[fd], (unsigned char)~WAITING, __ATOMIC_SEQ_CST);
        set_bits(fd, SPOKE);
      } else {
        set_bits(fd, UNSURE);  // not the awaited one: a stray, or one of the socket before it
      }
    }
    at += NLMSG_ALIGN(h.nlmsg_len);
  }
}

/* After a send (`out`) or a read of `r` bytes on a redirected fd, from `src` (reads). */
static void note_iov(int fd, const struct iovec *iov, size_t cnt, ssize_t r, int out, const struct sockaddr_nl *src) {
  if (r <= 0 || !redirected(fd)) return;
  if (cnt != 1 || !iov) { set_bits(fd, UNSURE); return; }
  size_t n = (size_t)r < iov[0].iov_len ? (size_t)r : iov[0].iov_len;
  if (out) note_sent(fd, iov[0].iov_base, n);
  else if (!src) set_bits(fd, UNSURE);  // whose it is cannot be told
  else if (src->nl_pid == daemon_port) note_read(fd, iov[0].iov_base, n);
}

/* Before close: the CLOSING message, when this socket can vouch that it read every answer. */
static void closing(int fd) {
  unsigned char st = __atomic_load_n(&fd_state[fd], __ATOMIC_SEQ_CST);
  if ((st & (UNSURE | SHARED | WAITING)) || !(st & SPOKE)) return;
  int saved = errno;
  // Without FD_CLOEXEC a program it started (posix_spawn, system: no fork handlers run) may hold it.
  int fdflags = real_fcntl(fd, F_GETFD);
  if (fdflags < 0 || !(fdflags & FD_CLOEXEC)) { errno = saved; return; }
  struct stat sb;
  if (fstat(fd, &sb) == 0 && (uint32_t)sb.st_ino != 0) send_sockopt(fd, ACCELNL_OPT_CLOSING, (uint32_t)sb.st_ino);
  errno = saved;
}

/* A fork: both processes now hold every redirected socket, so neither may vouch at its close. */
static void forked(void) {
  for (int fd = 0; fd < MAX_FD; fd++) if (fd_state[fd] & REDIRECTED) set_bits(fd, SHARED);
}

static size_t iov_len(const struct iovec *iov, size_t n) {
  size_t t = 0;
  for (size_t i = 0; iov && i < n; i++) t += iov[i].iov_len;
  return t;
}

int socket(int domain, int type, int protocol) {
  resolve();
  if (domain != AF_NETLINK || protocol != NETLINK_GENERIC) return real_socket(domain, type, protocol);
  int fd = real_socket(domain, type, NETLINK_USERSOCK);
  if (fd >= 0 && fd < MAX_FD) {
    fd_state[fd] = REDIRECTED;
    fd_ext_ack[fd] = 0;
    fd_recv_len[fd] = 0;
    fd_seq[fd] = 0;
  }
  trace("accelnl shim: socket(NETLINK_GENERIC) = fd %d on NETLINK_USERSOCK, daemon port 0x%x", fd, daemon_port);
  return fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  resolve();
  if (!redirected(fd) || !addr || len < sizeof(struct sockaddr_nl)) return real_bind(fd, addr, len);
  struct sockaddr_nl want = *(const struct sockaddr_nl *)addr;
  if (want.nl_pid == 0) {
    struct sockaddr_nl now;
    socklen_t nl = sizeof now;
    if (getsockname(fd, (struct sockaddr *)&now, &nl) == 0 && now.nl_pid != 0) want.nl_pid = now.nl_pid;
  }
  // Groups (a bitmask of 1..32) are asked of the daemon, by unicast, not joined (see the top).
  uint32_t groups = want.nl_groups;
  want.nl_groups = 0;
  int r = real_bind(fd, (struct sockaddr *)&want, sizeof want);
  for (int g = 1; r == 0 && g <= 32; g++)
    if (groups & (1u << (g - 1))) send_sockopt(fd, NETLINK_ADD_MEMBERSHIP, g);
  return r;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  resolve();
  if (redirected(fd) && addr && to_kernel(addr, len)) {
    struct sockaddr_nl a = daemon_addr();
    return real_connect(fd, (struct sockaddr *)&a, sizeof a);
  }
  return real_connect(fd, addr, len);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  resolve();
  if (redirected(fd) && level == SOL_NETLINK && (name == NETLINK_ADD_MEMBERSHIP || name == NETLINK_DROP_MEMBERSHIP)) {
    if (!val || len < sizeof(int)) { errno = EINVAL; return -1; }
    // The group id is the one our nlctrl gave; the daemon checks it (see the top).
    flush_pending(fd);
    return send_sockopt(fd, name, (uint32_t)*(const int *)val);
  }
  int r = real_setsockopt(fd, level, name, val, len);
  if (!redirected(fd) || level != SOL_NETLINK || !val || len < sizeof(int)) return r;
  if (name == NETLINK_EXT_ACK && r == 0) {
    fd_ext_ack[fd] = *(const int *)val ? 1 : 0;
    set_bits(fd, EXT_ACK_PENDING);
  }
  return r;
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
  resolve();
  int r = real_getsockopt(fd, level, name, val, len);
  if (r == 0 && redirected(fd) && level == SOL_SOCKET && name == SO_PROTOCOL && val && len && *len >= sizeof(int))
    *(int *)val = NETLINK_GENERIC;
  return r;
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len) {
  resolve();
  if (!redirected(fd) || !to_kernel(addr, len)) return real_sendto(fd, buf, n, flags, addr, len);
  flush_pending(fd);
  struct sockaddr_nl a = daemon_addr();
  ssize_t r = real_sendto(fd, buf, n, flags, (struct sockaddr *)&a, sizeof a);
  if (r > 0) note_sent(fd, buf, (size_t)r);
  return r;
}

ssize_t send(int fd, const void *buf, size_t n, int flags) {
  return sendto(fd, buf, n, flags, NULL, 0);
}

ssize_t __send_chk(int fd, const void *buf, size_t n, size_t buflen, int flags) {
  (void)buflen;
  return sendto(fd, buf, n, flags, NULL, 0);
}

/* Redirected sockets passed in an SCM_RIGHTS message are held elsewhere too: never vouched for. */
static void passed_fds(const struct msghdr *msg) {
  if (!msg || !msg->msg_control) return;
  for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int passed;
      memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
      if (redirected(passed)) set_bits(passed, SHARED);
    }
  }
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  resolve();
  passed_fds(msg);
  if (!redirected(fd) || !msg || !to_kernel(msg->msg_name, msg->msg_namelen)) return real_sendmsg(fd, msg, flags);
  flush_pending(fd);
  struct sockaddr_nl a = daemon_addr();
  struct msghdr m = *msg;
  m.msg_name = &a;
  m.msg_namelen = sizeof a;
  ssize_t r = real_sendmsg(fd, &m, flags);
  note_iov(fd, m.msg_iov, m.msg_iovlen, r, 1, NULL);
  return r;
}

int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags) {
  resolve();
  if (!redirected(fd)) return real_sendmmsg(fd, v, n, flags);
  // One at a time, each through sendmsg's redirect; stop at the first failure as sendmmsg does.
  unsigned int i;
  for (i = 0; i < n; i++) {
    ssize_t r = sendmsg(fd, &v[i].msg_hdr, flags);
    if (r < 0) return i ? (int)i : -1;
    v[i].msg_len = (unsigned int)r;
  }
  return (int)i;
}

ssize_t write(int fd, const void *buf, size_t n) {
  resolve();
  if (!redirected(fd)) return real_write(fd, buf, n);
  return sendto(fd, buf, n, 0, NULL, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  resolve();
  if (!redirected(fd)) return real_writev(fd, iov, cnt);
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = (struct iovec *)iov;
  m.msg_iovlen = cnt;
  return sendmsg(fd, &m, 0);
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr, socklen_t *len) {
  resolve();
  note_recv_len(fd, n);
  if (!redirected(fd)) return real_recvfrom(fd, buf, n, flags, addr, len);
  // The sender's address, to tell the daemon's answers from anyone else's, even when not asked for.
  struct sockaddr_nl src;
  socklen_t sl = sizeof src;
  memset(&src, 0, sizeof src);
  ssize_t r = real_recvfrom(fd, buf, n, flags, (struct sockaddr *)&src, &sl);
  if (r >= 0 && addr && len) {
    // The caller's view: the daemon shown as the kernel, cut to the length it gave.
    struct sockaddr_nl shown = src;
    from_daemon(&shown, sl);
    memcpy(addr, &shown, *len < sl ? *len : sl);
    *len = sl;
  }
  if (r > 0 && !(flags & MSG_PEEK)) {
    struct iovec one = { buf, n };
    note_iov(fd, &one, 1, r, 0, &src);
  }
  return r;
}

ssize_t recv(int fd, void *buf, size_t n, int flags) {
  return recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags) {
  (void)buflen;
  return recv(fd, buf, n, flags);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr, socklen_t *len) {
  (void)buflen;
  return recvfrom(fd, buf, n, flags, addr, len);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  resolve();
  if (msg) note_recv_len(fd, iov_len(msg->msg_iov, msg->msg_iovlen));
  // The length the caller's name buffer has: the kernel reports the address's, which may be more.
  socklen_t given = msg && msg->msg_name ? msg->msg_namelen : 0;
  ssize_t r = real_recvmsg(fd, msg, flags);
  if (r < 0 || !msg || !redirected(fd)) return r;
  // The sender, before it is shown as the kernel (none: no room for it, or the caller asked for none).
  struct sockaddr_nl srcbuf, *src = NULL;
  if (given >= sizeof srcbuf) { memcpy(&srcbuf, msg->msg_name, sizeof srcbuf); src = &srcbuf; from_daemon(msg->msg_name, sizeof srcbuf); }
  if (!(flags & MSG_PEEK)) note_iov(fd, msg->msg_iov, msg->msg_iovlen, r, 0, src);
  return r;
}

int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *timeout) {
  resolve();
  for (unsigned int i = 0; v && i < n; i++) note_recv_len(fd, iov_len(v[i].msg_hdr.msg_iov, v[i].msg_hdr.msg_iovlen));
  int r = real_recvmmsg(fd, v, n, flags, timeout);
  if (r > 0 && redirected(fd)) {
    // The name buffers' own lengths are not kept here (the kernel rewrites them): whose each
    // datagram is goes unchecked, so a socket read this way does not vouch.
    set_bits(fd, UNSURE);
    for (int i = 0; i < r; i++) from_daemon(v[i].msg_hdr.msg_name, v[i].msg_hdr.msg_namelen);
  }
  return r;
}

static int copy_state(int from, int to) {
  if (to >= 0 && to < MAX_FD) {
    if (redirected(from)) set_bits(from, SHARED);
    fd_state[to] = redirected(from) ? fd_state[from] : 0;
    fd_ext_ack[to] = redirected(from) ? fd_ext_ack[from] : 0;
    fd_recv_len[to] = redirected(from) ? fd_recv_len[from] : 0;
  }
  return to;
}

int dup(int fd) {
  resolve();
  int r = real_dup(fd);
  return r >= 0 ? copy_state(fd, r) : r;
}

int dup2(int fd, int to) {
  resolve();
  int r = real_dup2(fd, to);
  return r >= 0 && r != fd ? copy_state(fd, r) : r;
}

int dup3(int fd, int to, int flags) {
  resolve();
  int r = real_dup3(fd, to, flags);
  return r >= 0 ? copy_state(fd, r) : r;
}

// fcntl is variadic: its third argument, when there is one, is an int or a pointer; passing it on
// as a pointer-sized value is what glibc itself does.
int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  resolve();
  int r = real_fcntl(fd, cmd, arg);
  return r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) ? copy_state(fd, r) : r;
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  resolve();
  int r = (real_fcntl64 ? real_fcntl64 : real_fcntl)(fd, cmd, arg);
  return r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) ? copy_state(fd, r) : r;
}

int close(int fd) {
  resolve();
  if (redirected(fd)) closing(fd);
  if (fd >= 0 && fd < MAX_FD) fd_state[fd] = 0;
  return real_close(fd);
}
