# Summarizes a benchmark's measure.py lines (label, seconds, peak MiB, cpu seconds):
# the median wall time of the reference runs (labels starting with `ref`) and of the
# simtally runs, their ratio, and simtally's peak memory.
#
#   awk -F'\t' -v ref=duckdb -v name="the DuckDB reference" -v goal=1.5 -f scripts/medians.awk runs.tsv
function median(a, n,   i, j, t) {
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return a[int((n + 1) / 2)]
}
index($1, ref) == 1 { r[++nr] = $2 }
/^simtally/ { s[++ns] = $2; if ($3 > mem) mem = $3 }
END {
  mr = median(r, nr); ms = median(s, ns)
  printf "median: %s %.3fs, simtally %.3fs; simtally runs at %.2fx the speed of %s (goal %sx); simtally peak %d MiB\n", ref, mr, ms, mr / ms, name, goal, mem
}
