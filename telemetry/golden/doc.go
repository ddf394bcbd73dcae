// Package golden keeps the golden signals of traffic (requests per second,
// success ratio, latency percentiles) per route and per upstream target in
// fixed-size in-process rings: 90 buckets of 10 s (15 minutes), each with a
// request count, a 5xx count and a log-scale latency histogram. Memory is
// bounded by MaxSeries whatever the traffic; series beyond it are counted
// under one overflow series. It imports nothing of drawbridge's.
package golden
