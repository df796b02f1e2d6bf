#!/usr/bin/env python3
"""Submits jobs to jobqueue from Python, standard library only.

    python3 examples/python/producer.py --url http://127.0.0.1:8080 --count 5

Each job is {"type": "reverse", "payload": {"text": ...}}; the answer (202) comes once the job is
committed. With --key, each job carries an idempotency key, so running the same command twice
submits each job once (a repeat answers 200 with the first job's id). Prints one id per line.
"""
import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def submit(url, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    req = urllib.request.Request(url.rstrip("/") + "/submit", data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())
    except urllib.error.HTTPError as err:
        # 4xx: the job is wrong (the message says how); 429/503: retry later (Retry-After says when).
        sys.exit("submit refused: %d %s" % (err.code, err.read().decode(errors="replace")))


def main():
    parser = argparse.ArgumentParser(description="submit jobs to jobqueue")
    parser.add_argument("--url", default=os.environ.get("JOBQUEUE_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--type", default="reverse")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--text", default="hello from python")
    parser.add_argument("--priority", type=int, default=None, help="0-100 (default: the type's)")
    parser.add_argument("--key", default=None, help="idempotency key prefix: <key>-<n> per job")
    args = parser.parse_args()
    token = os.environ.get("JOBQUEUE_TOKEN")

    jobs = []
    for n in range(args.count):
        job = {"type": args.type, "payload": {"text": "%s #%d" % (args.text, n)}}
        if args.priority is not None:
            job["priority"] = args.priority
        if args.key:
            job["idempotencyKey"] = "%s-%d" % (args.key, n)
        jobs.append(job)
    # One request for the whole batch: committed all or nothing (at most 1000 jobs per batch).
    for start in range(0, len(jobs), 1000):
        answer = submit(args.url, {"jobs": jobs[start:start + 1000]}, token)
        for job_id in answer["ids"]:
            print(job_id)


if __name__ == "__main__":
    main()
