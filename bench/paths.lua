-- wrk script: replays request paths from a file, one per line, in order (wrapping around), and writes
-- a JSON summary. Used by bench/wrk.py with one wrk thread, so one Lua state sees every request.
-- done() runs in wrk's main Lua state, which init() never saw: both files come from the environment.
--
--   WRK_PATHS=paths.txt WRK_SUMMARY=summary.json wrk -t1 -c4 -d10s -s bench/paths.lua http://127.0.0.1:PORT
local paths = {}
local next_index = 1

function init(args)
  for line in io.lines(os.getenv("WRK_PATHS")) do
    paths[#paths + 1] = line
  end
end

function request()
  local path = paths[next_index]
  next_index = next_index % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local errors = summary.errors
  local out = io.open(os.getenv("WRK_SUMMARY"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
  out:close()
end
