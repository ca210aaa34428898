#!/usr/bin/env bash
# plots/split_series.sh TABLE XCOL "GROUPCOL..." OUTDIR — splits a TSV table with a header row
# into one file per combination of the group columns' values, OUTDIR/<v1>_<v2>....tsv, each with
# the header and its rows sorted numerically by XCOL, so gnuplot draws every series as one
# connected line (rows of other series never interleave).
set -euo pipefail
table=$1 xcol=$2 groups=$3 out=$4
mkdir -p "$out"
awk -F'\t' -v xcol="$xcol" -v groups="$groups" -v out="$out" '
  NR == 1 { header = $0; for (i = 1; i <= NF; i++) col[$i] = i
            n = split(groups, g, " "); next }
  { name = ""; for (k = 1; k <= n; k++) name = name (k > 1 ? "_" : "") $col[g[k]]
    file = out "/" name ".rows"; print $col[xcol] "\t" $0 > file; files[file] = 1 }
  END { for (f in files) { close(f); base = substr(f, 1, length(f) - 5)
          print header > (base ".tsv"); close(base ".tsv")
          system("sort -g -k1,1 \"" f "\" | cut -f2- >> \"" base ".tsv\"; rm -f \"" f "\"") } }' "$table"
