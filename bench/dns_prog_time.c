// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* dns_prog_time: the time the kernel spends in bpf/dns.bpf.c's cgroup_skb programs per packet,
 * measured by the kernel itself (BPF_PROG_TEST_RUN with a repeat count: the mean duration of one
 * run, no clock read per packet on the host, nothing attached).
 *
 *   dns_prog_time OBJECT [REPEAT]
 *
 * Prints one JSON line per (program, packet): a UDP datagram to port 9 (what every packet that is
 * no DNS pays: headers read, ports compared) and a DNS query to port 53 (a record reserved,
 * filled with 512 bytes of payload at most and submitted; the ring is large enough for REPEAT). */
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* Ethernet + IPv4 + UDP + a DNS query for "bench.test" A (the test run strips the Ethernet
 * header for cgroup_skb programs, as the hook sees packets from the network header). */
static unsigned char packet[] = {
	0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00,                     /* Ethernet, IPv4 */
	0x45, 0, 0, 0x38, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, /* IPv4, UDP */
	0xa0, 0x00, 0, 53, 0, 0x24, 0, 0,                                   /* UDP, dport 53 */
	0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,                     /* DNS header */
	5, 'b', 'e', 'n', 'c', 'h', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,   /* question */
};
#define DPORT_LO 37 /* offset of the low byte of the UDP destination port */

int main(int argc, char **argv)
{
	const char *progs[] = { "dns_egress", "dns_ingress" };
	struct bpf_object *obj;
	int repeat, p;

	if (argc < 2)
		return fprintf(stderr, "usage: dns_prog_time OBJECT [REPEAT]\n"), 2;
	repeat = argc > 2 ? atoi(argv[2]) : 20000;
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "events"), 64 << 20) ||
	    bpf_object__load(obj))
		return fprintf(stderr, "cannot load %s\n", argv[1]), 1;
	for (p = 0; p < 2; p++) {
		int fd = bpf_program__fd(bpf_object__find_program_by_name(obj, progs[p]));
		int dns;

		for (dns = 0; dns <= 1; dns++) {
			LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet,
				    .data_size_in = sizeof(packet), .repeat = repeat);
			/* egress looks at the destination port, ingress at the source port */
			unsigned char *port = packet + (p == 0 ? DPORT_LO : DPORT_LO - 2);

			memset(packet + 34, 0, 4);
			port[-1] = 0;
			port[0] = dns ? 53 : 9;
			if (bpf_prog_test_run_opts(fd, &opts))
				return perror("BPF_PROG_TEST_RUN"), 1;
			printf("{\"program\":\"%s\",\"packet\":\"%s\",\"ns_per_run\":%u,\"ret\":%u}\n",
			       progs[p], dns ? "dns" : "other", opts.duration, opts.retval);
		}
	}
	bpf_object__close(obj);
	return 0;
}
