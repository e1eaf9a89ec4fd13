"""The multi-replica topology on loopback, from Debian's packages: what production looks like.

::

    client ──► nginx :front ──► rasa replica A ─┐        ┌─► action server A
                          └──► rasa replica B ─┤        │
                                                ├─► nginx :actions ─► action server B
      PostgreSQL (tracker store, masked) ◄──────┤
      Redis (lock store)                 ◄──────┤
      RabbitMQ (pika event broker, masked) ◄────┤
      LLM server (components.llm.serve)  ◄──────┘  (OpenAI-compatible; vLLM in production)

Every service is a real server started here on free loopback ports in a temporary folder
(PostgreSQL runs as the ``postgres`` user and RabbitMQ as ``rabbitmq`` when started by root, as
Debian's packages set them up). Used by ``tests/topology`` and ``benchmarks/load.py``; the
production mapping is in docs/deployment.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from components.assistants import ASSISTANT_ENV, get_assistant
from deployment.commands import ROOT, build_knowledge_index
from deployment.servers import (
    ACTION_SECRET,
    ACTIONS_MAX_BODY_BYTES,
    API_TOKEN,
    MAX_BODY_BYTES,
    SESSION_SECRET,
    VAULT_KEY,
    action_server_command,
    action_server_env,
    free_port,
    rasa_server_command,
    rasa_server_env,
    stop,
    wait_until_up,
)

PG_PASSWORD = "topology-test-password"
QUEUE = "kefu_events"


def pg_bin() -> Path | None:
    """Folder of Debian's PostgreSQL server binaries (the newest), or None."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


def missing_binaries() -> list[str]:
    """What this machine lacks to run the topology (empty: it can)."""
    missing = [] if pg_bin() else ["postgresql"]
    for name, binary in (
        ("redis-server", "redis-server"),
        ("rabbitmq-server", "rabbitmq-server"),
        ("nginx", "nginx"),
    ):
        if not shutil.which(binary) and not Path(f"/usr/sbin/{binary}").exists():
            missing.append(name)
    return missing


def _as(user: str) -> list[str]:
    """Command prefix to run as ``user`` when we are root (servers refuse to run as root)."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _wait_port(port: int, proc: subprocess.Popen | None, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{log.name}: exited early\n{_tail(log)}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"{log.name}: port {port} did not open\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def _wait_closed(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.3)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)


class Postgres:
    """A PostgreSQL cluster (Debian's binaries) with database and user ``kefu``."""

    def __init__(self, base: Path) -> None:
        self.dir, self.port = base / "postgres", free_port()
        self.log = base / "postgres.log"
        self.bin = pg_bin()

    def _run(self, *args: str) -> None:
        subprocess.run([*_as("postgres"), *args], check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        """Initialise the database cluster once and start PostgreSQL on its port."""
        if not (self.dir / "PG_VERSION").exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            pwfile = self.dir.parent / "pgpass.txt"
            pwfile.write_text(PG_PASSWORD)
            if os.geteuid() == 0:
                shutil.chown(self.dir, "postgres", "postgres")
                shutil.chown(pwfile, "postgres", "postgres")
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.dir),
                "-U",
                "kefu",
                "--pwfile",
                str(pwfile),
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
            )
            pwfile.unlink()
        if os.geteuid() == 0 and not self.log.exists():
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir),
            "-l",
            str(self.log),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "-w",
            "start",
        )
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="kefu",
            password=PG_PASSWORD,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'kefu'").fetchone():
                conn.execute("CREATE DATABASE kefu")

    def stop(self) -> None:
        """Stop the server (fast shutdown)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop")

    def sql(self, query: str, *params: object) -> list[tuple]:
        """Rows of ``query`` in the tracker database (psql as the superuser)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="kefu", password=PG_PASSWORD, dbname="kefu"
        ) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []


class Redis:
    """A Redis server without persistence (a lock store needs none)."""

    def __init__(self, base: Path) -> None:
        self.port, self.log, self.proc = free_port(), base / "redis.log", None

    def start(self) -> None:
        """Start redis-server on its port (no persistence)."""
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--daemonize", "no"],
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.port, self.proc, self.log)

    def stop(self) -> None:
        """Stop the server."""
        if self.proc is not None:
            stop(self.proc)
            _wait_closed(self.port)


class RabbitMQ:
    """A RabbitMQ node of its own (node name, ports, data folder), reached as ``guest``."""

    def __init__(self, base: Path) -> None:
        self.dir, self.port, self.dist_port = base / "rabbitmq", free_port(), free_port()
        self.log, self.proc = base / "rabbitmq.log", None
        self.node = f"kefu{self.port}@localhost"

    def start(self) -> None:
        """Start a RabbitMQ node of its own on its port and wait until it takes connections."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.dir)], check=True)
        env = {
            **os.environ,
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
        }
        self.proc = subprocess.Popen(
            ["rabbitmq-server"],
            env=env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.dir,
        )
        _wait_port(self.port, self.proc, self.log, timeout=120)

    def stop(self) -> None:
        """Stop the node."""
        pid_file = self.dir / "pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(self.proc)
        _wait_closed(self.port)

    def drain(self) -> list[bytes]:
        """Every message waiting in the events queue (consumed)."""
        return [body for _, body in self.drain_messages()]

    def drain_messages(self) -> list[tuple[str | None, bytes]]:
        """Every message waiting in the events queue (consumed), with its AMQP message id."""
        import pika

        params = pika.ConnectionParameters("127.0.0.1", self.port, connection_attempts=5)
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.queue_declare(QUEUE, durable=True)
            found = []
            while True:
                method, properties, body = channel.basic_get(QUEUE, auto_ack=True)
                if method is None:
                    return found
                found.append((properties.message_id, body))
        finally:
            connection.close()


NGINX_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  # no query strings in the access log: ?token= must not land there
  log_format kefu '$remote_addr [$time_local] "$request_method $uri" $status '
                  '$request_time $upstream_addr';
  access_log {prefix}/access.log kefu;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  client_max_body_size {max_body};  # the customer-facing server; the actions one below
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream kefu_rasa {{
{rasa_servers}
  }}
  upstream kefu_rasa_sticky {{
    hash $remote_addr consistent;  # socket.io: one client, one replica
{rasa_servers}
  }}
  upstream kefu_actions {{
{action_servers}
  }}
  server {{
    listen 127.0.0.1:{front};
    location /socket.io/ {{
      proxy_pass http://kefu_rasa_sticky;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 300s;
    }}
    location / {{
      proxy_pass http://kefu_rasa;
      proxy_read_timeout 120s;
      proxy_next_upstream error timeout http_502 http_503;  # never re-sends a POST it sent
    }}
  }}
  server {{
    listen 127.0.0.1:{actions};
    client_max_body_size {actions_max_body};  # Rasa sends the whole session to the actions
    location / {{
      proxy_pass http://kefu_actions;
      proxy_read_timeout 60s;
      proxy_next_upstream error timeout http_502 http_503;
    }}
  }}
}}
"""


class Nginx:
    """nginx as the reverse proxy in front of the replicas and of the action servers."""

    def __init__(self, base: Path) -> None:
        self.dir, self.front, self.actions = base / "nginx", free_port(), free_port()
        self.log, self.proc = base / "nginx.log", None

    def start(self, rasa_ports: list[int], action_ports: list[int]) -> None:
        """Start nginx in front of the Rasa replicas and the action servers."""
        self.dir.mkdir(parents=True, exist_ok=True)

        def servers(ports: list[int]) -> str:
            return "\n".join(
                f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=3s;" for p in ports
            )

        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                user="user root;\n" if os.geteuid() == 0 else "",
                prefix=self.dir,
                max_body=f"{MAX_BODY_BYTES // 1024}k",
                actions_max_body=f"{ACTIONS_MAX_BODY_BYTES // 1024}k",
                rasa_servers=servers(rasa_ports),
                action_servers=servers(action_ports),
                front=self.front,
                actions=self.actions,
            )
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(self.dir), "-g", "daemon off;"],
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.front, self.proc, self.log)
        _wait_port(self.actions, self.proc, self.log)

    def stop(self) -> None:
        """Stop nginx."""
        if self.proc is not None:
            stop(self.proc)


@dataclass
class Process:
    """A server process the cluster can stop and start again on the same port."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log: Path
    health: str
    proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> None:
        """Start the process (``wait``: until its health URL answers)."""
        with self.log.open("a") as log:
            log.write(f"---- start {time.strftime('%H:%M:%S')} ----\n")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait()

    def wait(self) -> None:
        """Wait until the health URL answers (or fail with the log's tail)."""
        assert self.proc is not None
        wait_until_up(self.health, self.proc, self.log, timeout=400)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL)."""
        if self.proc is not None:
            stop(self.proc)


@dataclass
class Cluster:
    """The running topology: services, processes, and where to reach them."""

    home: Path
    base: Path
    postgres: Postgres
    redis: Redis
    rabbitmq: RabbitMQ
    nginx: Nginx
    llm: Process | None
    actions: list[Process] = field(default_factory=list)
    replicas: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The front door: nginx, round-robin over the replicas."""
        return f"http://127.0.0.1:{self.nginx.front}"

    def replica_url(self, n: int) -> str:
        """The base URL of replica ``n`` (bypassing nginx)."""
        return self.replicas[n].health.split("/status")[0]

    @property
    def logs(self) -> dict[str, Path]:
        """Every log file of the topology, by name."""
        procs = [*self.replicas, *self.actions, *([self.llm] if self.llm else [])]
        logs = {p.name: p.log for p in procs}
        for service in (self.postgres, self.redis, self.rabbitmq, self.nginx):
            logs[type(service).__name__.lower()] = service.log
        logs["nginx_access"] = self.nginx.dir / "access.log"
        return logs

    def say(self, sender: str, text: str, url: str | None = None) -> list[dict]:
        """Send ``text`` as ``sender`` through nginx (or ``url``); the bot's messages."""
        reply = requests.post(
            f"{url or self.url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=120,
        )
        assert reply.status_code == 200, (reply.status_code, reply.text)
        return reply.json()

    def events(self, stored_sender: str) -> list[dict]:
        """The sender's events in the PostgreSQL tracker store, in the order they were saved."""
        import json

        rows = self.postgres.sql(
            "SELECT data FROM events WHERE sender_id = %s ORDER BY id", stored_sender
        )
        return [json.loads(data) for (data,) in rows]


def endpoints(cluster: Cluster, llm_port: int | None) -> dict:
    """The replicas' endpoints.yml: the shipped one with the topology's stores."""
    shipped = yaml.safe_load((ROOT / "endpoints.yml").read_text())  # no ${} expansion here
    shipped["action_endpoint"]["url"] = f"http://127.0.0.1:{cluster.nginx.actions}/webhook"
    shipped["tracker_store"] = {
        "type": "components.stores.tracker_store.MaskingTrackerStore",
        "inner": {
            "type": "SQL",
            "dialect": "postgresql",
            "url": "127.0.0.1",
            "port": cluster.postgres.port,
            "db": "kefu",
            "username": "kefu",
            "password": "${KEFU_PG_PASSWORD}",
        },
    }
    shipped["lock_store"] = {
        "type": "components.stores.lock_store.RetryingRedisLockStore",
        "url": "127.0.0.1",
        "port": cluster.redis.port,
        "db": 1,
        "key_prefix": "kefu",
    }
    shipped["event_broker"] = {
        "type": "components.stores.event_broker.MaskingEventBroker",
        "inner": {
            "type": "components.stores.pika_broker.ReliablePikaEventBroker",
            "url": "127.0.0.1",
            "port": cluster.rabbitmq.port,
            "username": "guest",
            "password": "guest",
            "queues": [QUEUE],
        },
    }
    if llm_port is not None:
        shipped["nlg"]["llm"] = {
            "backend": "openai",
            "base_url": f"http://127.0.0.1:{llm_port}/v1",
            "model": "kefu-local",
        }
    return shipped


@contextlib.contextmanager
def running_cluster(
    model: Path,
    replicas: int = 2,
    action_servers: int = 2,
    llm: bool = True,
    home: Path | None = None,
    credentials: dict | None = None,
    assistant: str | None = None,
) -> Iterator[Cluster]:
    """Start the whole topology; stop everything afterwards (also on failure).

    ``credentials`` replaces the shipped channels (the load benchmark lifts the rate limit);
    ``assistant`` is the assistant served (default: ``KEFU_ASSISTANT``'s, else the shop).
    """
    chosen = get_assistant(assistant)
    base = Path(tempfile.mkdtemp(prefix="kefu-topology-"))
    base.chmod(0o755)  # postgres and rabbitmq users reach their folders
    home = home or base / "home"
    home.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(home, base, Postgres(base), Redis(base), RabbitMQ(base), Nginx(base), None)
    env = {
        **os.environ,
        "KEFU_HOME": str(home),
        "KEFU_WARMUP": "1",
        "PYTHONUNBUFFERED": "1",
        "KEFU_VAULT_KEY": VAULT_KEY,
        "KEFU_ACTION_SECRET": ACTION_SECRET,
        "KEFU_SESSION_SECRET": SESSION_SECRET,
        "KEFU_PG_PASSWORD": PG_PASSWORD,
        "SANIC_REQUEST_MAX_SIZE": str(MAX_BODY_BYTES),
        "SANIC_HOST": "127.0.0.1",
        "KEFU_ACTIONS_URL": "unused",  # endpoints name nginx directly
        "OMP_NUM_THREADS": "1",  # several servers share the cores
        ASSISTANT_ENV: chosen.name,
    }
    started: list = []
    try:
        build_knowledge_index(env)
        for service in (cluster.postgres, cluster.redis, cluster.rabbitmq):
            service.start()
            started.append(service)
        rasa_ports = [free_port() for _ in range(replicas)]
        action_ports = [free_port() for _ in range(action_servers)]
        cluster.nginx.start(rasa_ports, action_ports)
        started.append(cluster.nginx)
        llm_port = free_port() if llm else None
        if llm_port is not None:
            cluster.llm = Process(
                "llm",
                [sys.executable, "-m", "components.llm.serve", "--port", str(llm_port)],
                env,
                base / "llm.log",
                f"http://127.0.0.1:{llm_port}/health",
            )
        credentials_file = chosen.credentials
        if credentials is not None:
            credentials_file = base / "credentials.yml"
            credentials_file.write_text(yaml.safe_dump(credentials))
        endpoints_file = base / "endpoints.yml"
        endpoints_file.write_text(yaml.safe_dump(endpoints(cluster, llm_port), sort_keys=False))
        for n, port in enumerate(action_ports):
            cluster.actions.append(
                Process(
                    f"actions{n}",
                    action_server_command(port, assistant=chosen.name),
                    action_server_env(env, chosen.name),
                    base / f"actions{n}.log",
                    f"http://127.0.0.1:{port}/health",
                )
            )
        for n, port in enumerate(rasa_ports):
            cluster.replicas.append(
                Process(
                    f"rasa{n}",
                    rasa_server_command(model, endpoints_file, credentials_file, port, API_TOKEN),
                    rasa_server_env(env, API_TOKEN),
                    base / f"rasa{n}.log",
                    f"http://127.0.0.1:{port}/status?token={API_TOKEN}",
                )
            )
        procs = [*([cluster.llm] if cluster.llm else []), *cluster.actions, *cluster.replicas]
        for proc in procs:
            proc.start(wait=False)
            started.append(proc)
        for proc in procs:
            proc.wait()
        yield cluster
    finally:
        for item in reversed(started):
            with contextlib.suppress(Exception):
                item.stop()
        if not os.environ.get("KEFU_KEEP_TOPOLOGY"):
            shutil.rmtree(base, ignore_errors=True)
