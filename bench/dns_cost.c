// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* dns_cost: what the dns program's hooks cost the host, per operation, on loopback.
 *
 *   dns_cost udp N PORT      N round trips of a 64-byte datagram between two UDP sockets of this
 *                            process, to PORT and back (not a DNS port: what every other packet
 *                            pays; 2 packets out, 2 in per round trip)
 *   dns_cost connect N PORT  N connect() calls of a UDP socket to 127.0.0.1:PORT (cgroup/connect4)
 *   dns_cost dns N           N DNS queries to 127.0.0.1:53, each answered by this process's own
 *                            socket bound there (run it in a network namespace of its own): the
 *                            same round trip, of which the query and its answer are DNS
 *
 * Prints one JSON line: {"mode", "n", "ns_per_op", "cpu_ns_per_op", "pid"}: wall-clock and CPU
 * time (user + system, where loopback's softirq work runs too) of the loop per operation; compare
 * runs with the program stopped and running, interleaved. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* CPU time of this process (user + system: the loopback's softirq work runs in it too), ns. */
static double cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int udp_bound(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof(*addr)) ||
	    getsockname(fd, (struct sockaddr *)addr, &len))
		die("bind");
	return fd;
}

/* A query for "bench.test" A with id `id` (12-byte header, 12-byte name, type, class). */
static size_t dns_query(unsigned char *q, unsigned id)
{
	static const unsigned char rest[] = { 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'b', 'e', 'n',
					      'c', 'h', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1 };

	q[0] = id >> 8;
	q[1] = id & 0xff;
	memcpy(q + 2, rest, sizeof(rest));
	return 2 + sizeof(rest);
}

int main(int argc, char **argv)
{
	struct sockaddr_in srv = { .sin_family = AF_INET }, cli = { .sin_family = AF_INET };
	unsigned char buf[512];
	const char *mode;
	long n, i;
	double t0, t1, c0, c1;

	if (argc < 3)
		return fprintf(stderr, "usage: dns_cost udp|connect N PORT | dns N\n"), 2;
	mode = argv[1];
	n = atol(argv[2]);
	srv.sin_addr.s_addr = cli.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.sin_port = htons(strcmp(mode, "dns") ? (argc > 3 ? atoi(argv[3]) : 9) : 53);
	memset(buf, 0x5a, sizeof(buf));

	if (!strcmp(mode, "connect")) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);

		if (fd < 0)
			die("socket");
		t0 = now_ns();
		c0 = cpu_ns();
		for (i = 0; i < n; i++)
			if (connect(fd, (struct sockaddr *)&srv, sizeof(srv)))
				die("connect");
		c1 = cpu_ns();
		t1 = now_ns();
	} else {
		int s = udp_bound(&srv), c = udp_bound(&cli);
		int dns = !strcmp(mode, "dns");

		if (connect(c, (struct sockaddr *)&srv, sizeof(srv)))
			die("connect");
		t0 = now_ns();
		c0 = cpu_ns();
		for (i = 0; i < n; i++) {
			size_t len = dns ? dns_query(buf, (unsigned)i & 0xffff) : 64;
			ssize_t got;

			if (send(c, buf, len, 0) != (ssize_t)len)
				die("send");
			got = recv(s, buf, sizeof(buf), 0);
			if (got < 0)
				die("recv");
			if (dns) { /* answer it: QR and RA set, NOERROR, no records */
				buf[2] |= 0x80;
				buf[3] |= 0x80;
			}
			if (sendto(s, buf, got, 0, (struct sockaddr *)&cli, sizeof(cli)) != got)
				die("sendto");
			if (recv(c, buf, sizeof(buf), 0) < 0)
				die("recv");
		}
		c1 = cpu_ns();
		t1 = now_ns();
	}
	printf("{\"mode\":\"%s\",\"n\":%ld,\"ns_per_op\":%.1f,\"cpu_ns_per_op\":%.1f,\"pid\":%d}\n",
	       mode, n, (t1 - t0) / n, (c1 - c0) / n, getpid());
	return 0;
}
