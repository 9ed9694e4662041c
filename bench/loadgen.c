// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loadgen: makes connect(2) calls (or sends datagrams) on loopback at a given rate, or as fast as
 * it can, and prints exactly how many it made as one JSON line.
 *
 *   loadgen MODE RATE LIMIT
 *     MODE   tcp-refused  a new TCP socket per call, connect to a loopback port that is bound but
 *                         not listening (ECONNREFUSED), close
 *            tcp-accept   a new TCP socket per call, connect to a listener this process runs (a
 *                         thread accepts and closes), close with SO_LINGER 0 (no TIME_WAIT)
 *            udp          one UDP socket, connect() to 127.0.0.1:9 again and again
 *            udp-drop     one UDP socket bound to 127.0.0.1, sendto() of an 8-byte datagram to a
 *                         loopback port nobody has bound: the kernel drops each one on receive
 *                         (kfree_skb, reason NO_SOCKET); its calls are counted as "connects"
 *     RATE   calls per second, 0 = as fast as possible
 *     LIMIT  "5s" (duration) or "1000000" (count)
 *
 * Every connect() (or sendto()) the process makes is counted (pid = the caller in the JSON), so
 * a monitor's events for that pid can be compared with "connects". The process names itself
 * "lg-<pid>" (its comm), so a monitor that counts by command can tell its runs apart too. In
 * udp-drop the JSON also has "sport" and "dport", the datagrams' ports: the drops are in softirq,
 * which usually runs in the sender's context on loopback but may run in another task's
 * (ksoftirqd), so a monitor can count them by port as well as by pid. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { TCP_REFUSED, TCP_ACCEPT, UDP, UDP_DROP };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A loopback TCP socket bound to an ephemeral port; listening or not. */
static int bound_tcp(int listening, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) || getsockname(fd, (struct sockaddr *)addr, &len))
		die("bind");
	if (listening && listen(fd, 4096))
		die("listen");
	return fd;
}

/* A loopback UDP socket bound to an ephemeral port, and that port (host byte order). */
static int bound_udp(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) || getsockname(fd, (struct sockaddr *)addr, &len))
		die("bind");
	return fd;
}

static void *acceptor(void *arg)
{
	int lfd = *(int *)arg;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			close(fd);
		else if (errno == EINVAL || errno == EBADF)
			return NULL; /* listener shut down */
	}
}

int main(int argc, char **argv)
{
	enum mode mode;
	struct sockaddr_in dst;
	double rate, duration = 0, start, end, cpu0, next_tick;
	uint64_t count = 0, made = 0, ok = 0, unexpected = 0, batch;
	unsigned sport = 0;
	int lfd = -1, ufd = -1, expect;
	pthread_t thread;
	char *endp;
	static const char payload[8] = "loadgen";

	if (argc != 4) {
		fprintf(stderr, "usage: loadgen tcp-refused|tcp-accept|udp|udp-drop RATE(0=max) DURATIONs|COUNT\n");
		return 2;
	}
	if (!strcmp(argv[1], "tcp-refused"))
		mode = TCP_REFUSED;
	else if (!strcmp(argv[1], "tcp-accept"))
		mode = TCP_ACCEPT;
	else if (!strcmp(argv[1], "udp"))
		mode = UDP;
	else if (!strcmp(argv[1], "udp-drop"))
		mode = UDP_DROP;
	else {
		fprintf(stderr, "loadgen: unknown mode '%s'\n", argv[1]);
		return 2;
	}
	rate = strtod(argv[2], NULL);
	if (strchr(argv[3], 's'))
		duration = strtod(argv[3], NULL);
	else
		count = strtoull(argv[3], &endp, 10);
	if (rate < 0 || (duration <= 0 && count == 0)) {
		fprintf(stderr, "loadgen: bad rate or limit\n");
		return 2;
	}

	{
		char comm[16];

		snprintf(comm, sizeof(comm), "lg-%d", getpid());
		prctl(PR_SET_NAME, comm); /* before the acceptor thread, which inherits it */
	}
	switch (mode) {
	case TCP_REFUSED:
		lfd = bound_tcp(0, &dst); /* bound, never listening: the port stays ours and closed */
		expect = -ECONNREFUSED;
		break;
	case TCP_ACCEPT:
		lfd = bound_tcp(1, &dst);
		if (pthread_create(&thread, NULL, acceptor, &lfd))
			die("pthread_create");
		expect = 0;
		break;
	case UDP:
		memset(&dst, 0, sizeof(dst));
		dst.sin_family = AF_INET;
		dst.sin_port = htons(9);
		dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (ufd < 0)
			die("socket");
		expect = 0;
		break;
	case UDP_DROP: {
		struct sockaddr_in src;
		int tmp = bound_udp(&dst);

		/* a port that was free a moment ago, closed again: nobody listens on it */
		close(tmp);
		ufd = bound_udp(&src);
		sport = ntohs(src.sin_port);
		expect = 0;
		break;
	}
	}

	/* Paced runs go in 1 ms ticks: the calls due by now, then sleep to the next tick. */
	cpu0 = cpu_s();
	start = now_s();
	next_tick = start;
	end = duration > 0 ? start + duration : 1e300;
	for (;;) {
		double t = now_s();

		if (t >= end || (count && made >= count))
			break;
		if (rate > 0) {
			uint64_t due = (uint64_t)((t - start) * rate) + 1;

			if (made >= due) {
				struct timespec ts;

				next_tick += 0.001;
				if (next_tick < t)
					next_tick = t + 0.001;
				ts.tv_sec = (time_t)next_tick;
				ts.tv_nsec = (long)((next_tick - ts.tv_sec) * 1e9);
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
				continue;
			}
			batch = due - made < 256 ? due - made : 256; /* behind: re-check the clock */
		} else {
			batch = 256;
		}
		if (count && batch > count - made)
			batch = count - made;
		while (batch--) {
			int fd = ufd, r;

			if (mode == TCP_REFUSED || mode == TCP_ACCEPT) {
				fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
				if (fd < 0)
					die("socket");
			}
			if (mode == UDP_DROP)
				r = sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&dst,
					   sizeof(dst)) < 0;
			else
				r = connect(fd, (struct sockaddr *)&dst, sizeof(dst));
			made++;
			r = r ? -errno : 0;
			if (r == expect)
				ok++;
			else
				unexpected++;
			if (mode == TCP_ACCEPT) {
				struct linger lin = { .l_onoff = 1, .l_linger = 0 };

				setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
			}
			if (mode == TCP_REFUSED || mode == TCP_ACCEPT)
				close(fd);
		}
	}
	end = now_s();
	{
		double elapsed = end - start, cpu = cpu_s() - cpu0;

		printf("{\"pid\":%d,\"comm\":\"lg-%d\",\"mode\":\"%s\",\"target_rate\":%.0f,\"connects\":%llu,"
		       "\"expected_result\":%llu,\"unexpected_result\":%llu,\"elapsed_s\":%.6f,"
		       "\"rate\":%.1f,\"cpu_s\":%.6f,\"cpu_us_per_connect\":%.4f",
		       getpid(), getpid(), argv[1], rate, (unsigned long long)made, (unsigned long long)ok,
		       (unsigned long long)unexpected, elapsed, made / elapsed, cpu,
		       made ? cpu * 1e6 / made : 0.0);
		if (mode == UDP_DROP)
			printf(",\"sport\":%u,\"dport\":%u", sport, ntohs(dst.sin_port));
		printf("}\n");
		fflush(stdout);
	}
	if (mode == TCP_ACCEPT) {
		shutdown(lfd, SHUT_RDWR); /* wakes the acceptor */
		pthread_join(thread, NULL);
	}
	return 0;
}
