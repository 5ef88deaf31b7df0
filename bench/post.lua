-- wrk: send the JSON body in BENCH_BODY (by POST, or BENCH_METHOD) to the URL
-- given on the command line. With BENCH_IDS (ids, comma-separated), each
-- request takes the next id, round the list, in place of {id} in the body and
-- in BENCH_PATH (the path to send to instead of the URL's), and {n} in the
-- body takes the request's number, so an update's title differs from the
-- row's (a write that changes nothing is no change: ours journals and
-- notifies none, so it would bench a lighter write than the peers'). With
-- BENCH_CLIENTS (client ids, comma-separated), each request is a numbered
-- mutation: {client} and {seq} in the body take the next client, round the
-- list, and that client's next sequence number (as each connection of an
-- app would number its own). With BENCH_AUTHORIZATION, every request sends
-- it as Authorization.
wrk.method = os.getenv("BENCH_METHOD") or "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
wrk.body = os.getenv("BENCH_BODY")

local ids = {}
for id in string.gmatch(os.getenv("BENCH_IDS") or "", "[^,]+") do
  ids[#ids + 1] = id
end
if #ids > 0 then
  local path = os.getenv("BENCH_PATH") or wrk.path
  local n = 0
  local sent = 0
  request = function()
    n = n % #ids + 1
    sent = sent + 1
    local body = string.gsub(string.gsub(wrk.body, "{id}", ids[n]), "{n}", tostring(sent))
    return wrk.format(nil, (string.gsub(path, "{id}", ids[n])), nil, body)
  end
end

local clients = {}
for client in string.gmatch(os.getenv("BENCH_CLIENTS") or "", "[^,]+") do
  clients[#clients + 1] = client
end
if #clients > 0 then
  local n = 0
  request = function()
    local k = n % #clients + 1
    local seq = math.floor(n / #clients) + 1
    n = n + 1
    local body = string.gsub(string.gsub(wrk.body, "{client}", clients[k]), "{seq}", tostring(seq))
    return wrk.format(nil, nil, nil, body)
  end
end
