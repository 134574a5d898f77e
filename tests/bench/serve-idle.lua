-- tests/bench/serve-idle.lua: the wrk script of tests/bench/serve.
--
--   wrk -t2 -c64 -d10s -s serve-idle.lua URL -- LIST THREADS
--
-- LIST has one line per device: "BODY-FILE SIGNATURE", the file holding
-- the device's signed Idle report and the base64 Mdm-Signature over it.
-- Every request is a PUT /mdm/connect of one device's body with its own
-- signature; each of the THREADS threads (wrk's -t) walks the devices in
-- turn from its own starting point, so the threads do not all speak for
-- the same device at once.  The requests are formatted once, in init,
-- so the client spends its time sending them rather than building them:
-- client and server share the machine.
--
-- There is no response function on purpose: with one, wrk hands every
-- response's headers and body to Lua, which costs the client CPU the
-- server then lacks.  wrk counts each status from 400 up in
-- errors.status; the bench refuses a run with any error, and the server
-- answers only 200 or 400 and up, so "no errors" means "all 200".
--
-- done() prints one line the bench reads:
--   wrk_result requests=N duration_us=N errors_connect=N errors_read=N
--   errors_write=N errors_status=N errors_timeout=N p50_us=N p99_us=N

local threads = {}
local reqs = {}
local n = 0
local i = 0

-- wrk calls setup() and then init() for one thread before it sets up the
-- next, so the thread count comes as an argument.
function setup(thread)
	table.insert(threads, thread)
	thread:set("thread_index", #threads)
end

function init(args)
	local list, count = args[1], tonumber(args[2] or "1")
	if list == nil or count == nil or count < 1 then
		error("usage: wrk ... -s serve-idle.lua URL -- LIST THREADS")
	end
	local headers
	for line in io.lines(list) do
		local path, sig = line:match("^(%S+) (%S+)$")
		if path == nil then
			error(list .. ": not \"BODY-FILE SIGNATURE\": " .. line)
		end
		local f = assert(io.open(path, "rb"))
		local body = f:read("*a")
		f:close()
		headers = {
			["Content-Type"] = "application/x-apple-aspen-mdm",
			["Mdm-Signature"] = sig,
		}
		n = n + 1
		reqs[n] = wrk.format("PUT", "/mdm/connect", headers, body)
	end
	if n == 0 then
		error(list .. ": no devices")
	end
	i = math.floor((thread_index - 1) % count * n / count)
end

function request()
	i = i % n + 1
	return reqs[i]
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("wrk_result requests=%d duration_us=%d " ..
	    "errors_connect=%d errors_read=%d errors_write=%d " ..
	    "errors_status=%d errors_timeout=%d p50_us=%d p99_us=%d\n",
	    summary.requests, summary.duration, e.connect, e.read, e.write,
	    e.status, e.timeout, latency:percentile(50),
	    latency:percentile(99)))
end
