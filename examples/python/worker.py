#!/usr/bin/env python3
"""A jobqueue worker in Python, standard library only.

It asks the server for jobs of pull types (POST /claim, a long-poll), runs each one, and reports
back with the job's lease token: POST /jobs/<id>/complete, or /fail. While a job runs, a thread
sends heartbeats (POST /jobs/<id>/heartbeat) so the lease does not run out; a job whose lease runs
out goes to another worker. Any 409 means the claim is gone (the job was cancelled, or its lease
expired and it went elsewhere): drop it and move on.

    python3 examples/python/worker.py --url http://127.0.0.1:8080 --types reverse

JOBQUEUE_URL and JOBQUEUE_TOKEN are read from the environment when the flags are not given.
SIGTERM or Ctrl-C: the jobs in hand are finished and reported, then the worker exits.
"""
import argparse
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request


class ClaimGone(Exception):
    """The server answered 409: this claim is no longer ours."""


class Permanent(Exception):
    """A failure that retrying cannot fix: the job is dead-lettered at once."""


class JobQueue:
    def __init__(self, url, token=None, timeout_s=60):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def call(self, method, path, body=None, timeout_s=None):
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = "Bearer " + self.token
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as res:
                text = res.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            if err.code == 409:
                raise ClaimGone(detail) from None
            raise RuntimeError("%s %s: %d %s" % (method, path, err.code, detail)) from None

    def claim(self, types, max_jobs=10, wait_ms=20000, lease_ms=30000):
        # The socket waits a little longer than the server may hold the poll.
        body = {"types": types, "max": max_jobs, "waitMs": wait_ms, "leaseMs": lease_ms}
        answer = self.call("POST", "/claim", body, timeout_s=wait_ms / 1000 + 30)
        return answer["jobs"]

    def complete(self, job, result=None):
        body = {"leaseToken": job["leaseToken"]}
        if result is not None:
            body["result"] = result
        return self.call("POST", "/jobs/%s/complete" % job["id"], body)

    def fail(self, job, error, retry=True):
        return self.call("POST", "/jobs/%s/fail" % job["id"], {"leaseToken": job["leaseToken"], "error": error, "retry": retry})

    def heartbeat(self, job, extend_ms=None):
        body = {"leaseToken": job["leaseToken"]}
        if extend_ms is not None:
            body["extendMs"] = extend_ms
        return self.call("POST", "/jobs/%s/heartbeat" % job["id"], body)


class Heartbeat(threading.Thread):
    """Extends one job's lease every third of the lease until stopped."""

    def __init__(self, queue, job, lease_ms):
        super().__init__(daemon=True)
        self.queue, self.job, self.lease_ms = queue, job, lease_ms
        self.done = threading.Event()
        self.lost = False

    def run(self):
        while not self.done.wait(self.lease_ms / 3000):
            try:
                self.queue.heartbeat(self.job, self.lease_ms)
            except ClaimGone:
                self.lost = True
                return
            except Exception as err:  # the server is briefly unreachable: try again next time
                print("heartbeat failed: %s" % err, file=sys.stderr)

    def stop(self):
        self.done.set()


def reverse(job):
    """The work: reverse payload["text"]. A payload without text can never succeed."""
    payload = job["payload"]
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise Permanent('expected a payload like {"text": "..."}')
    return payload["text"][::-1]


HANDLERS = {"reverse": reverse}


def run_one(queue, job, lease_ms):
    beat = Heartbeat(queue, job, lease_ms)
    beat.start()
    try:
        result = HANDLERS[job["type"]](job)
    except Permanent as err:
        outcome = ("fail", str(err), False)
    except Exception as err:
        outcome = ("fail", "%s: %s" % (type(err).__name__, err), True)
    else:
        outcome = ("complete", result, None)
    finally:
        beat.stop()
    try:
        if outcome[0] == "complete":
            answer = queue.complete(job, outcome[1])
        else:
            answer = queue.fail(job, outcome[1], retry=outcome[2])
        print(json.dumps({"id": job["id"], "attempt": job["attempt"], "state": answer["state"]}), flush=True)
    except ClaimGone:
        print(json.dumps({"id": job["id"], "attempt": job["attempt"], "state": "lost"}), flush=True)


def main():
    parser = argparse.ArgumentParser(description="a jobqueue pull worker")
    parser.add_argument("--url", default=os.environ.get("JOBQUEUE_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--types", default=",".join(HANDLERS), help="comma-separated pull types to run")
    parser.add_argument("--max", type=int, default=10, help="jobs per claim, 1-100")
    parser.add_argument("--wait-ms", type=int, default=20000, help="how long one claim waits for jobs")
    parser.add_argument("--lease-ms", type=int, default=30000, help="each job's lease; heartbeats renew it every third")
    parser.add_argument("--exit-when-idle", action="store_true", help="exit after a claim that brought nothing")
    args = parser.parse_args()
    queue = JobQueue(args.url, os.environ.get("JOBQUEUE_TOKEN"))
    types = [t for t in args.types.split(",") if t]

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    failures = 0
    while not stopping.is_set():
        try:
            jobs = queue.claim(types, args.max, args.wait_ms, args.lease_ms)
            failures = 0
        except Exception as err:  # unreachable or restarting: back off, at most 30 s
            failures += 1
            delay = min(30, 2 ** failures / 4)
            print("claim failed (%s); retrying in %.1fs" % (err, delay), file=sys.stderr)
            stopping.wait(delay)
            continue
        if not jobs and args.exit_when_idle:
            break
        for job in jobs:  # finished even when a stop was asked for meanwhile: they are ours
            run_one(queue, job, args.lease_ms)


if __name__ == "__main__":
    main()
