// Conformance: fw_cfg's I/O ports on q35 in every width, 0x50f-0x51c, as a qtest script. The
// golden replies are a transcript of a qtest-enabled QEMU 7.2 (Debian 7.2+dfsg-7+deb12u18 built
// by scripts/build-qemu-qtest.sh, `-machine q35,pit=off,hpet=off -accel qtest -device vmgenid`),
// taken with item 0x01 (feature bits) selected: the 2-byte "fwcfg" region answers byte reads with
// data bytes and refuses 16/32-bit reads (0), 0x512-0x513 are unassigned (all ones), the
// big-endian DMA register reads bytes of "QEMU CFG", wider accesses are cut at alignment; 16-bit
// writes at 0x510 select (also when the OUT starts on the unassigned 0x50e), byte and 32-bit writes
// do not. (QEMU 7.2 hw/nvram/fw_cfg.c, softmmu/physmem.c; see sim/bus/regions.ts.)
import { scriptCheck } from "../../sim/conform/script.ts";

const TRANSCRIPT: readonly (readonly [string, string])[] = [
  ["outw 0x510 0x1", "OK"],
  ["inb 0x50f", "OK 0x00ff"],
  ["inb 0x510", "OK 0x0003"],
  ["inb 0x511", "OK 0x0000"],
  ["inb 0x512", "OK 0x00ff"],
  ["inb 0x513", "OK 0x00ff"],
  ["inb 0x514", "OK 0x0051"],
  ["inb 0x515", "OK 0x0045"],
  ["inb 0x516", "OK 0x004d"],
  ["inb 0x517", "OK 0x0055"],
  ["inb 0x518", "OK 0x0020"],
  ["inb 0x519", "OK 0x0043"],
  ["inb 0x51a", "OK 0x0046"],
  ["inb 0x51b", "OK 0x0047"],
  ["inb 0x51c", "OK 0x00ff"],
  ["inw 0x50f", "OK 0x00ff"],
  ["inw 0x510", "OK 0x0000"],
  ["inw 0x511", "OK 0xff00"],
  ["inw 0x512", "OK 0xffff"],
  ["inw 0x513", "OK 0x51ff"],
  ["inw 0x514", "OK 0x4551"],
  ["inw 0x515", "OK 0x4d45"],
  ["inw 0x516", "OK 0x554d"],
  ["inw 0x517", "OK 0x2055"],
  ["inw 0x518", "OK 0x4320"],
  ["inw 0x519", "OK 0x4643"],
  ["inw 0x51a", "OK 0x4746"],
  ["inw 0x51b", "OK 0xff47"],
  ["inw 0x51c", "OK 0xffff"],
  ["inl 0x50f", "OK 0xff0000ff"],
  ["inl 0x510", "OK 0x0000"],
  ["inl 0x511", "OK 0x51ffff00"],
  ["inl 0x512", "OK 0x4551ffff"],
  ["inl 0x513", "OK 0x4d4551ff"],
  ["inl 0x514", "OK 0x554d4551"],
  ["inl 0x515", "OK 0x20554d45"],
  ["inl 0x516", "OK 0x4320554d"],
  ["inl 0x517", "OK 0x46432055"],
  ["inl 0x518", "OK 0x47464320"],
  ["inl 0x519", "OK 0xff474643"],
  ["inl 0x51a", "OK 0xffff4746"],
  ["inl 0x51b", "OK 0xffffff47"],
  ["inl 0x51c", "OK 0xffffffff"],
  ["outw 0x510 0x0", "OK"],
  ["outl 0x50e 0x00010000", "OK"],
  ["inb 0x511", "OK 0x0003"],
  ["outb 0x510 0x1", "OK"],
  ["inb 0x511", "OK 0x0000"],
  ["outw 0x511 0x1", "OK"],
  ["inb 0x511", "OK 0x0000"],
  ["outl 0x510 0x1", "OK"],
  ["inb 0x511", "OK 0x0000"],
  ["outw 0x510 0x0", "OK"],
  ["inl 0x511", "OK 0x51ffff51"],
  ["inw 0x510", "OK 0x0000"],
];

export const checks = [
  scriptCheck({
    id: "vmgenid/q35-fwcfg-port-widths",
    suite: "vmgenid",
    title: "q35 fw_cfg ports 0x50f-0x51c: byte/word/dword reads and writes reply as QEMU 7.2 does",
    machine: "q35",
    needs: ["portio", "fwcfg"],
    steps: TRANSCRIPT.map(([cmd, golden]) => ({ cmd, golden })),
  }),
];
