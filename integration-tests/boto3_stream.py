"""Reads an InvokeWithResponseStream reply from the emulator with boto3, as a user would.

Usage: boto3_stream.py ENDPOINT FUNCTION PAYLOAD. Prints one JSON object: the status code,
the payload chunks as text, and the InvokeComplete event.
"""

import json
import sys

import boto3
from botocore.config import Config

endpoint, function, payload = sys.argv[1:4]
client = boto3.client(
    "lambda",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
    config=Config(retries={"max_attempts": 1}),
)
reply = client.invoke_with_response_stream(FunctionName=function, Payload=payload)
chunks = []
complete = None
for event in reply["EventStream"]:
    if "PayloadChunk" in event:
        chunks.append(event["PayloadChunk"]["Payload"].decode())
    elif "InvokeComplete" in event:
        complete = event["InvokeComplete"]
print(
    json.dumps(
        {
            "status": reply["StatusCode"],
            "version": reply.get("ExecutedVersion"),
            "chunks": chunks,
            "complete": complete,
        }
    )
)
