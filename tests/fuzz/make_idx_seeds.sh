#!/usr/bin/env bash
# Regenerates the seed corpus of the IDX target (tests/fuzz/idx/) from the real Fashion-MNIST
# files: small valid files (8 items, as many as fuzz_idx.c's other files hold) and one file per
# class of bad input the loader refuses. Each seed starts with fuzz_idx.c's control byte
# (bits 0-1: which file, bit 2: gzip it first, bits 3-4: image size 16/28/32/64).
#   tests/fuzz/make_idx_seeds.sh [FMNIST_DIR]
set -eu
cd "$(dirname "$0")/../.."
src=${1:-/usr/share/datasets/fashion-mnist}
out=tests/fuzz/idx
n=8
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
images() { zcat "$src/t10k-images-idx3-ubyte.gz" | tail -c +17 | head -c $(($1 * 784)); }
labels() { zcat "$src/t10k-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$1"; }
img_file() { { be32 0x803; be32 "$n"; be32 28; be32 28; images "$n"; } > "$tmp/images"; }
lbl_file() { { be32 0x801; be32 "$n"; labels "$n"; } > "$tmp/labels"; }
seed() { { printf "\\x$(printf %02x "$2")"; cat; } > "$out/$1"; }  # name, control byte; stdin = bytes
img_file; lbl_file
seed valid-train-images    4  < "$tmp/images"                  # gzipped by the harness
seed valid-train-labels    5  < "$tmp/labels"
seed valid-t10k-images-r16 $((4 | 0 << 3 | 2)) < "$tmp/images"  # area-resampled to 16x16
seed valid-t10k-images-r64 $((4 | 3 << 3 | 2)) < "$tmp/images"  # padded to 64x64
gzip -9nc "$tmp/labels" | seed valid-t10k-labels-pregz 3       # a real gzip stream, written raw
seed valid-labels-plain 1 < "$tmp/labels"                      # plain IDX (gzread passes it through)
gzip -9nc "$tmp/images" | gzip -9nc | seed bad-double-gzip 0
gzip -9nc "$tmp/labels" | head -c -8 | seed bad-gzip-no-trailer 3
gzip -9nc "$tmp/labels" | head -c -20 | seed bad-gzip-truncated 3
{ gzip -9nc "$tmp/labels"; printf 'junk'; } | seed bad-gzip-trailing-junk 3
{ printf '\x03\x08\x00\x00'; tail -c +5 "$tmp/images"; } | seed bad-byte-swapped 4
{ be32 0x804; tail -c +5 "$tmp/images"; } | seed bad-dims 4
{ be32 0xd03; tail -c +5 "$tmp/images"; } | seed bad-elem-type 4
{ be32 0x803; be32 0; be32 28; be32 28; } | seed bad-no-items 4
{ be32 0x803; be32 "$n"; be32 27; be32 28; images "$n"; } | seed bad-27x28 4
{ be32 0x803; be32 4294967295; be32 28; be32 28; images 1; } | seed bad-huge-count 4
head -c 100 "$tmp/images" | seed bad-truncated-data 4
head -c 10 "$tmp/images" | seed bad-truncated-header 4
{ cat "$tmp/labels"; printf 'xx'; } | seed bad-trailing 5
{ be32 0x801; be32 "$n"; labels $((n - 1)); printf '\x0a'; } | seed bad-label-10 5
{ be32 0x801; be32 $((n - 1)); labels $((n - 1)); } | seed bad-count-mismatch 5
: | seed bad-empty 4
echo "wrote $(ls "$out" | wc -l) seeds to $out"
