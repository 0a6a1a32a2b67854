-- wrk script: each request carries one of many session cookies (read from the file named by
-- the WRK_COOKIES environment variable, one Cookie header value per line) and uses the method
-- in WRK_METHOD, so requests spread over many sessions as real traffic does.
local cookies = {}
local index = 0

function init(args)
  for line in io.lines(os.getenv("WRK_COOKIES")) do
    cookies[#cookies + 1] = line
  end
  index = math.random(#cookies)
  wrk.method = os.getenv("WRK_METHOD") or "GET"
end

function request()
  index = index % #cookies + 1
  return wrk.format(nil, nil, {["Cookie"] = cookies[index]})
end
