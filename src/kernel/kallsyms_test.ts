import assert from "node:assert/strict";
import { Kallsyms, kernelSymbols } from "./kallsyms.ts";

/** A small /proc/kallsyms: text symbols (t/T), data symbols, module symbols, unsorted. */
const SYNTHETIC = [
  "ffffffff81002000 T tcp_v4_rcv",
  "ffffffff81000000 T _stext",
  "ffffffff81001000 t __udp4_lib_rcv",
  "ffffffff81001800 D some_data",
  "ffffffff81001900 b some_bss",
  "ffffffff81001a00 r some_rodata",
  "ffffffff81001b00 W weak_function",
  "ffffffffc0100000 t nft_do_chain\t[nf_tables]",
  "ffffffffc0100400 T nft_module_exported\t[nf_tables]",
  "ffffffffc0200000 d module_data\t[nf_tables]",
  "",
].join("\n");

Deno.test("Kallsyms keeps text symbols only and strips the module suffix", () => {
  const syms = new Kallsyms(SYNTHETIC);
  // _stext, __udp4_lib_rcv, tcp_v4_rcv, nft_do_chain, nft_module_exported
  assert.equal(syms.size, 5);
  assert.equal(syms.resolve(0xffffffffc0100010n), "nft_do_chain+0x10");
  assert.equal(syms.resolve(0xffffffffc0100400n), "nft_module_exported+0x0");
  // a module symbol's name never carries "\t[nf_tables]"
  assert.ok(!syms.resolve(0xffffffffc0100001n)!.includes("["));
});

Deno.test("Kallsyms.resolve gives name+0xoffset of the containing text symbol", () => {
  const syms = new Kallsyms(SYNTHETIC);
  assert.equal(syms.resolve(0xffffffff81000000n), "_stext+0x0");
  assert.equal(syms.resolve(0xffffffff81001000n + 0x4bcn), "__udp4_lib_rcv+0x4bc");
  assert.equal(syms.resolve(0xffffffff81002091n), "tcp_v4_rcv+0x91");
  // data symbols are ignored: an address just past one belongs to the text symbol before it
  assert.equal(syms.resolve(0xffffffff81001800n), "__udp4_lib_rcv+0x800");
  assert.equal(syms.resolve(0xffffffff81001b10n), "__udp4_lib_rcv+0xb10");
  // a second lookup (cached) answers the same
  assert.equal(syms.resolve(0xffffffff81002091n), "tcp_v4_rcv+0x91");
});

Deno.test("Kallsyms.resolve gives null below the first symbol", () => {
  const syms = new Kallsyms(SYNTHETIC);
  assert.equal(syms.resolve(0xffffffff80ffffffn), null);
  assert.equal(syms.resolve(0n), null);
});

Deno.test("Kallsyms of a zeroed table (kptr_restrict) is empty and resolves nothing", () => {
  const zeroed = [
    "0000000000000000 T _stext",
    "0000000000000000 t __udp4_lib_rcv",
    "0000000000000000 t nft_do_chain\t[nf_tables]",
    "0000000000000000 D some_data",
  ].join("\n");
  const syms = new Kallsyms(zeroed);
  assert.equal(syms.size, 0);
  assert.equal(syms.resolve(0xffffffff81000000n), null);
  assert.equal(new Kallsyms("").size, 0);
});

Deno.test("kernelSymbols reads the running kernel's table once", () => {
  const syms = kernelSymbols();
  assert.equal(kernelSymbols(), syms, "the same table on the second call");
  let text = "";
  try {
    text = Deno.readTextFileSync("/proc/kallsyms");
  } catch {
    // unreadable: the table is empty
  }
  const own = new Kallsyms(text);
  // BPF programs loaded meanwhile (by anyone) add "[bpf]" symbols: compare the kernel's own
  const core = text.split("\n").filter((l) => / [tT] \S+$/.test(l));
  assert.ok(syms.size >= core.length * 0.9, `${syms.size} symbols, ${core.length} in vmlinux`);
  for (let i = 0; i < core.length; i += Math.max(1, Math.floor(core.length / 200))) {
    const addr = BigInt("0x" + core[i].split(" ")[0]);
    assert.equal(syms.resolve(addr), own.resolve(addr), core[i]);
  }
});
