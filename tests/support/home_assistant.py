"""A real Home Assistant for tests/home_assistant.rs, run with the python of the venv that
scripts/setup-home-assistant prints.

    python home_assistant.py CONFIG_DIR HTTP_PORT MQTT_PORT

Writes a minimal configuration into CONFIG_DIR (no default_config: only what the test reads),
starts Home Assistant on 127.0.0.1:HTTP_PORT with --skip-pip, onboards through its API (the
owner account, then a token), configures MQTT through a config entry made by the mqtt config
flow, then answers one JSON line per request line on stdin:

    {"ws": {...}}                 a websocket command; the answer is its result message
    {"state": "sensor.x"}         GET /api/states/sensor.x; {} when there is none

Its first line on stdout is {"ready": VERSION} or {"error": WHY}; Home Assistant's own log is
CONFIG_DIR/home-assistant.log.
"""

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp

START_TIMEOUT = 240  # s; a first start on a busy 2-core machine takes about a minute


def write_config(config_dir, http_port):
    with open(os.path.join(config_dir, "configuration.yaml"), "w") as f:
        f.write(
            f"""homeassistant:
  name: rtcollector test
  latitude: 52.5
  longitude: 13.4
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: DE
http:
  server_host: 127.0.0.1
  server_port: {http_port}
recorder:
  db_url: sqlite:///{config_dir}/home-assistant.db
  commit_interval: 1
config:
energy:
onboarding:
logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info
"""
        )


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def wait_until_up(session, base, proc):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Home Assistant exited with status {proc.returncode}")
        try:
            async with session.get(f"{base}/api/onboarding") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"Home Assistant did not answer within {START_TIMEOUT} s")


async def onboard(session, base):
    client_id = f"{base}/"
    user = {
        "client_id": client_id,
        "name": "Test",
        "username": "test",
        "password": "test-password-23",
        "language": "en",
    }
    async with session.post(f"{base}/api/onboarding/users", json=user) as r:
        body = await r.text()
        if r.status != 200:
            raise RuntimeError(f"onboarding the owner: {r.status} {body}")
        code = json.loads(body)["auth_code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": client_id}
    async with session.post(f"{base}/auth/token", data=form) as r:
        body = await r.text()
        if r.status != 200:
            raise RuntimeError(f"token: {r.status} {body}")
        return json.loads(body)["access_token"]


async def configure_mqtt(session, base, token, mqtt_port):
    h = {"Authorization": f"Bearer {token}"}
    url = f"{base}/api/config/config_entries/flow"
    async with session.post(url, json={"handler": "mqtt"}, headers=h) as r:
        flow = json.loads(await r.text())
    if flow.get("type") != "form":
        raise RuntimeError(f"mqtt config flow: {flow}")
    answer = {"broker": "127.0.0.1", "port": mqtt_port}
    async with session.post(f"{url}/{flow['flow_id']}", json=answer, headers=h) as r:
        done = json.loads(await r.text())
    if done.get("type") != "create_entry":
        raise RuntimeError(f"mqtt config flow, broker step: {done}")


class Ws:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1

    async def call(self, msg):
        msg = dict(msg, id=self.next_id)
        self.next_id += 1
        await self.ws.send_json(msg)
        while True:
            answer = await self.ws.receive_json()
            if answer.get("id") == msg["id"] and answer.get("type") == "result":
                return answer


async def connect_ws(session, base, token):
    ws = await session.ws_connect(f"{base.replace('http', 'ws')}/api/websocket")
    await ws.receive_json()  # auth_required
    await ws.send_json({"type": "auth", "access_token": token})
    ok = await ws.receive_json()
    if ok.get("type") != "auth_ok":
        raise RuntimeError(f"websocket auth: {ok}")
    return Ws(ws), ok.get("ha_version")


async def serve(session, base, token, ws):
    h = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        req = json.loads(line)
        if "ws" in req:
            say(await ws.call(req["ws"]))
        elif "state" in req:
            async with session.get(f"{base}/api/states/{req['state']}", headers=h) as r:
                say(json.loads(await r.text()) if r.status == 200 else {})
        else:
            say({"error": f"unknown request {req}"})


async def main():
    config_dir, http_port, mqtt_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    write_config(config_dir, http_port)
    log = open(os.path.join(config_dir, "stdout.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeassistant", "-c", config_dir, "--skip-pip",
         "--log-file", os.path.join(config_dir, "home-assistant.log")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        async with aiohttp.ClientSession() as session:
            try:
                await wait_until_up(session, base, proc)
                token = await onboard(session, base)
                await configure_mqtt(session, base, token, mqtt_port)
                ws, version = await connect_ws(session, base, token)
            except Exception as e:  # reported to the test, which shows the log
                say({"error": str(e)})
                return
            say({"ready": version})
            await serve(session, base, token, ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


asyncio.run(main())
