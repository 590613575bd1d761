# Medians of benchmark result lines "<side> <group> <metric> <value> <unit>",
# per (group, metric), in first-seen order; printed as
# "<prefix> <group> <metric> <median> <unit>". Used by bench/seed/run.sh and
# bench/e2e/run.sh:  awk -v prefix=seed -f bench/lib/medians.awk FILE
{ key = $2 " " $3; if (!(key in n)) { order[++k] = key; unit[key] = $5 }
  v[key, ++n[key]] = $4 }
END {
  for (i = 1; i <= k; i++) {
    key = order[i]; m = n[key]
    for (a = 1; a <= m; a++) s[a] = v[key, a]
    for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
    med = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
    printf "%s %s %.6g %s\n", prefix, key, med, unit[key]
  }
}
