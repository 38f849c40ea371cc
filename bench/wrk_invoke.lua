-- wrk: POST /function/add with {"args":[1,2]} on keep-alive connections (bench/http_load.sh).
wrk.method = "POST"
wrk.body = '{"args":[1,2]}'
wrk.headers["Content-Type"] = "application/json"
