-- wrk script: every request is a pre-built item used once (fresh AS/TGS bodies, fresh Authorization headers).
-- Arguments (after --): ITEMS_FILE MODE PATH
--   MODE "post":  each line is a JSON body, POSTed to PATH with an X-Forwarded-For loopback address of its
--                 own (the KDC trusts one proxy hop, so its per-address rate limit sees many clients);
--   MODE "auth":  each line is an Authorization header value for GET PATH;
--   MODE "plain": no file (ITEMS_FILE is "-"); GET PATH.
-- Lines are dealt round-robin to the threads; a thread that runs out counts "reused" and starts over
-- (the run is then invalid: reused items are refused as replays).  done() prints one JSON line.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   ok, bad, reused, pos = 0, 0, 0, 0
   items = {}
   local file, mode, path = args[1], args[2], args[3]
   plain = mode == "plain"
   if plain then
      items[1] = wrk.format("GET", path)
      return
   end
   local nthreads, i = tonumber(args[4]), 0
   for line in io.lines(file) do
      if i % nthreads == id then
         if mode == "post" then
            local xff = string.format("127.%d.%d.%d", 1 + math.floor(i / 65536) % 250, math.floor(i / 256) % 256, i % 256)
            items[#items + 1] = wrk.format("POST", path,
               {["Content-Type"] = "application/json", ["X-Forwarded-For"] = xff}, line)
         else
            items[#items + 1] = wrk.format("GET", path, {["Authorization"] = line})
         end
      end
      i = i + 1
   end
end

function request()
   pos = pos + 1
   if pos > #items then
      if not plain then reused = reused + 1 end
      pos = 1
   end
   return items[pos]
end

function response(status, headers, body)
   if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
   local tok, tbad, treused = 0, 0, 0
   for _, t in ipairs(threads) do
      tok = tok + t:get("ok")
      tbad = tbad + t:get("bad")
      treused = treused + t:get("reused")
   end
   io.write(string.format(
      '{"requests": %d, "ok": %d, "bad": %d, "reused": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, ' ..
      '"connect_errors": %d, "read_errors": %d, "timeouts": %d}\n',
      summary.requests, tok, tbad, treused, summary.duration / 1e6, latency:percentile(50) / 1e3,
      latency:percentile(99) / 1e3, summary.errors.connect, summary.errors.read, summary.errors.timeout))
end
