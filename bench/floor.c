/*
 * The userspace floor for a sequential netlink request: a minimal echo server and client on
 * NETLINK_USERSOCK, one process each. The client sends a 40-byte message with sendto() and waits
 * for the echo with recv(); the server receives and sends it straight back. Every round trip wakes
 * both processes once, which is what any userspace server pays and the kernel's own families do not.
 * bench/rate.ts builds this file with cc and reports its rate next to ours and the kernel's.
 *
 *   floor server PORT [POLL]            echo until killed
 *   floor client PORT MS [POLL]         echo for MS milliseconds (after MS/4 of warm-up), print "rate N"
 *   floor genl-server PORT [POLL]       a generic netlink server in C: answers every request as
 *                                       nlctrl answers GETFAMILY("nlctrl") with NLM_F_ACK, a
 *                                       136-byte NEWFAMILY (the kernel's bytes) then the ACK, two
 *                                       datagrams in one sendmmsg, as our daemon sends them
 *   floor genl PROTOCOL PORT MS [POLL]  the same client asking a generic netlink server instead:
 *                                       CTRL_CMD_GETFAMILY("nlctrl") with NLM_F_ACK, read until its
 *                                       ACK, on PROTOCOL (16: NETLINK_GENERIC, the kernel's nlctrl
 *                                       at port 0; 2: NETLINK_USERSOCK, our daemon at PORT), print
 *                                       "rate N"
 * POLL (µs, default 0): before each blocking read, read without waiting for up to that long, as a
 * busy-polling socket does (SO_BUSY_POLL, `accel daemon --busy-poll`): the polling floor, the
 * anchor for our busy-polling client and daemon.
 *
 * The genl mode puts a server beside the C echo server under one and the same client, so that
 * their ratio is what the server adds (bench/rate.ts also measures with its Node client). The
 * genl-server is the like-for-like anchor for our daemon: the same request, the same two answer
 * datagrams, with none of the work of deciding them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MSG_LEN 40

static int open_proto(int protocol, unsigned port) {
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
	if (fd < 0) { perror("socket(AF_NETLINK)"); exit(1); }
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_pid = port };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) { perror("bind"); exit(1); }
	return fd;
}

/* Busy polling before each blocking read, in µs (0: none). */
static long poll_us;

static double now_ms(void);

/* recvfrom, first spinning on non-blocking reads for up to poll_us. */
static ssize_t recv_polled(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fl) {
	socklen_t given = fl ? *fl : 0;
	if (poll_us > 0) {
		double end = now_ms() + poll_us / 1e3;
		do {
			if (fl) *fl = given;
			ssize_t r = recvfrom(fd, buf, n, flags | MSG_DONTWAIT, from, fl);
			if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return r;
		} while (now_ms() < end);
	}
	if (fl) *fl = given;
	return recvfrom(fd, buf, n, flags, from, fl);
}

static int open_sock(unsigned port) {
	return open_proto(NETLINK_USERSOCK, port);
}

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int serve(unsigned port) {
	int fd = open_sock(port);
	unsigned char buf[256];
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		ssize_t n = recv_polled(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0) { if (errno == EINTR) continue; perror("recvfrom"); return 1; }
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) < 0 && errno != EAGAIN) { perror("sendto"); return 1; }
	}
}

/* The payload of the kernel's NEWFAMILY reply to GETFAMILY("nlctrl"), after its netlink header
 * (genl header, then name, id, version, hdrsize, maxattr, ops, groups), as this kernel sends it. */
static const unsigned char NLCTRL_FAMILY[120] = {
	0x01, 0x02, 0x00, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x6e, 0x6c, 0x63, 0x74, 0x72, 0x6c, 0x00, 0x00,
	0x06, 0x00, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00,
	0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x2c, 0x00, 0x06, 0x00, 0x14, 0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00,
	0x08, 0x00, 0x02, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x00, 0x08, 0x00, 0x01, 0x00,
	0x0a, 0x00, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x07, 0x00,
	0x18, 0x00, 0x01, 0x00, 0x08, 0x00, 0x02, 0x00, 0x10, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x01, 0x00,
	0x6e, 0x6f, 0x74, 0x69, 0x66, 0x79, 0x00, 0x00,
};

/* The genl server: each request gets the NEWFAMILY reply and a capped ACK, both with the request's
 * seq and the sender's port, in one sendmmsg (what our daemon does for a kernel-style answer). */
static int serve_genl(unsigned port) {
	int fd = open_sock(port);
	union { struct nlmsghdr h; unsigned char b[256]; } req;
	union { struct nlmsghdr h; unsigned char b[16 + sizeof(NLCTRL_FAMILY)]; } rep;
	union { struct nlmsghdr h; unsigned char b[36]; } ack;
	memcpy(rep.b + 16, NLCTRL_FAMILY, sizeof(NLCTRL_FAMILY));
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		ssize_t n = recv_polled(fd, req.b, sizeof(req.b), 0, (struct sockaddr *)&from, &fl);
		if (n < 0) { if (errno == EINTR) continue; perror("recvfrom"); return 1; }
		if (n < (ssize_t)sizeof(struct nlmsghdr)) continue;
		rep.h = (struct nlmsghdr){ .nlmsg_len = sizeof(rep.b), .nlmsg_type = req.h.nlmsg_type,
			.nlmsg_seq = req.h.nlmsg_seq, .nlmsg_pid = from.nl_pid };
		ack.h = (struct nlmsghdr){ .nlmsg_len = sizeof(ack.b), .nlmsg_type = NLMSG_ERROR, .nlmsg_flags = NLM_F_CAPPED,
			.nlmsg_seq = req.h.nlmsg_seq, .nlmsg_pid = from.nl_pid };
		memset(ack.b + 16, 0, 4); /* error 0 */
		memcpy(ack.b + 20, req.b, 16); /* the request's header */
		struct iovec iov[2] = { { rep.b, sizeof(rep.b) }, { ack.b, sizeof(ack.b) } };
		struct mmsghdr mm[2];
		memset(mm, 0, sizeof(mm));
		for (int i = 0; i < 2; i++) {
			mm[i].msg_hdr.msg_name = &from;
			mm[i].msg_hdr.msg_namelen = fl;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		if (sendmmsg(fd, mm, 2, MSG_DONTWAIT) < 0 && errno != EAGAIN) { perror("sendmmsg"); return 1; }
	}
}

/* Whether a datagram ends the round trip of `seq`: the echo itself, or (genl) the ACK of the request. */
static int ends(const unsigned char *buf, ssize_t n, unsigned seq, int genl) {
	if (!genl) {
		if (n != MSG_LEN) { fprintf(stderr, "recv: %zd bytes\n", n); exit(1); }
		return ((const struct nlmsghdr *)buf)->nlmsg_seq == seq;
	}
	for (ssize_t at = 0; at + (ssize_t)sizeof(struct nlmsghdr) <= n;) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)(buf + at);
		/* A message must lie inside the datagram (this also keeps the walk from wrapping). */
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > (size_t)(n - at)) break;
		if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == seq) {
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(int))) { fprintf(stderr, "request %u: short NLMSG_ERROR\n", seq); exit(1); }
			int err = *(const int *)NLMSG_DATA(h);
			if (err) { fprintf(stderr, "request %u: error %d\n", seq, err); exit(1); }
			return 1;
		}
		at += NLMSG_ALIGN(h->nlmsg_len);
	}
	return 0;
}

/* One round trip: send the request to the server, read until its answer (the echo, or the ACK). */
static void round_trip(int fd, const struct sockaddr_nl *to, unsigned char *msg, size_t len, unsigned seq, int genl) {
	struct nlmsghdr *h = (struct nlmsghdr *)msg;
	h->nlmsg_seq = seq;
	ssize_t sent = sendto(fd, msg, len, 0, (const struct sockaddr *)to, sizeof(*to));
	if (sent < 0) { perror("sendto"); exit(1); }
	if (sent != (ssize_t)len) { fprintf(stderr, "sendto: %zd of %zu bytes\n", sent, len); exit(1); }
	union { struct nlmsghdr h; unsigned char b[8192]; } buf; /* aligned for the headers in it */
	for (;;) {
		/* MSG_TRUNC: the datagram's real length, so a cut one is an error, not a short message. */
		ssize_t n = recv_polled(fd, buf.b, sizeof(buf.b), MSG_TRUNC, NULL, NULL);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) { perror("recv (no answer within 2 s?)"); exit(1); }
		if (n > (ssize_t)sizeof(buf.b)) { fprintf(stderr, "recv: a %zd-byte datagram\n", n); exit(1); }
		if (ends(buf.b, n, seq, genl)) return;
	}
}

/* CTRL_CMD_GETFAMILY (3, version 1) for "nlctrl" to GENL_ID_CTRL (0x10), with NLM_F_ACK: 32 bytes. */
static size_t getfamily(unsigned char *msg) {
	static const char name[] = "nlctrl";
	struct nlmsghdr *h = (struct nlmsghdr *)msg;
	h->nlmsg_len = 32;
	h->nlmsg_type = 0x10;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	msg[16] = 3; /* genlmsghdr: cmd, version, reserved */
	msg[17] = 1;
	struct nlattr *a = (struct nlattr *)(msg + 20);
	a->nla_len = NLA_HDRLEN + sizeof(name); /* 11, padded to 12 */
	a->nla_type = 2; /* CTRL_ATTR_FAMILY_NAME */
	memcpy(msg + 24, name, sizeof(name));
	return 32;
}

static int client(int protocol, unsigned port, double ms, int genl) {
	int fd = open_proto(protocol, 0);
	/* A lost answer ends the run with an error instead of hanging the bench. */
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = port };
	union { struct nlmsghdr h; unsigned char b[MSG_LEN]; } m;
	unsigned char *msg = m.b;
	memset(msg, 0, MSG_LEN);
	struct nlmsghdr *h = &m.h;
	size_t len = MSG_LEN;
	if (genl) len = getfamily(msg);
	else {
		h->nlmsg_len = MSG_LEN;
		h->nlmsg_type = 0x10;
		h->nlmsg_flags = NLM_F_REQUEST;
	}
	unsigned seq = 0;
	double t = now_ms(), end = t + ms / 4;
	while (now_ms() < end) round_trip(fd, &to, msg, len, ++seq, genl);
	unsigned long done = 0;
	double t0 = now_ms();
	end = t0 + ms;
	for (;;) {
		for (int i = 0; i < 64; i++) round_trip(fd, &to, msg, len, ++seq, genl);
		done += 64;
		t = now_ms();
		if (t >= end) break;
	}
	printf("rate %.0f\n", done / ((t - t0) / 1e3));
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 3 && strcmp(argv[1], "server") == 0) {
		if (argc >= 4) poll_us = atol(argv[3]);
		return serve((unsigned)strtoul(argv[2], NULL, 0));
	}
	if (argc >= 3 && strcmp(argv[1], "genl-server") == 0) {
		if (argc >= 4) poll_us = atol(argv[3]);
		return serve_genl((unsigned)strtoul(argv[2], NULL, 0));
	}
	if (argc >= 4 && strcmp(argv[1], "client") == 0) {
		if (argc >= 5) poll_us = atol(argv[4]);
		return client(NETLINK_USERSOCK, (unsigned)strtoul(argv[2], NULL, 0), atof(argv[3]), 0);
	}
	if (argc >= 5 && strcmp(argv[1], "genl") == 0) {
		if (argc >= 6) poll_us = atol(argv[5]);
		return client(atoi(argv[2]), (unsigned)strtoul(argv[3], NULL, 0), atof(argv[4]), 1);
	}
	fprintf(stderr, "usage: floor server PORT [POLL_US] | floor genl-server PORT [POLL_US] | floor client PORT MS [POLL_US] | floor genl PROTOCOL PORT MS [POLL_US]\n");
	return 2;
}
