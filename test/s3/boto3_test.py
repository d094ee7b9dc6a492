#!/usr/bin/env python3
"""End-to-end check of the S3 gateway with boto3: multipart uploads (by hand
and through the transfer manager), ranged reads, copies, batch deletes and a
few error answers, with sha256 comparisons of everything that comes back.

Usage: TALUS_S3_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... \
       AWS_SECRET_ACCESS_KEY=... python3 test/s3/boto3_test.py
"""

import hashlib
import os
import sys
import tempfile
import time
import unittest

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

MiB = 1 << 20


def client():
    endpoint = os.environ["TALUS_S3_ENDPOINT"]
    if endpoint.startswith("http://"):
        # A CA bundle is for TLS; against plain http it only gets in the way.
        os.environ.pop("AWS_CA_BUNDLE", None)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def error_code(exc):
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


class Boto3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = "boto3-test-%d-%d" % (int(time.time()), os.getpid())
        cls.s3.create_bucket(Bucket=cls.bucket)

    @classmethod
    def tearDownClass(cls):
        s3 = cls.s3
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=cls.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=cls.bucket, Delete={"Objects": keys, "Quiet": True})
        for up in s3.list_multipart_uploads(Bucket=cls.bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=cls.bucket, Key=up["Key"], UploadId=up["UploadId"])
        s3.delete_bucket(Bucket=cls.bucket)

    def get(self, key, **kw):
        return self.s3.get_object(Bucket=self.bucket, Key=key, **kw)["Body"].read()

    def test_multipart_by_hand(self):
        parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1 * MiB)]
        key = "manual/multipart.bin"
        up = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType="application/x-test", Metadata={"a": "b"})
        done = []
        for i, p in enumerate(parts, 1):
            r = self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=up["UploadId"], PartNumber=i, Body=p)
            self.assertEqual(r["ETag"], '"%s"' % hashlib.md5(p).hexdigest())
            done.append({"PartNumber": i, "ETag": r["ETag"]})
        listed = self.s3.list_parts(Bucket=self.bucket, Key=key, UploadId=up["UploadId"])
        self.assertEqual([p["Size"] for p in listed["Parts"]], [len(p) for p in parts])
        r = self.s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": done})
        want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
        self.assertEqual(r["ETag"], '"%s"' % want)
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        self.assertEqual(head["ContentLength"], 11 * MiB)
        self.assertEqual(head["ContentType"], "application/x-test")
        self.assertEqual(head["Metadata"], {"a": "b"})
        self.assertEqual(sha256(self.get(key)), sha256(b"".join(parts)))
        self.assertEqual(sha256(self.get(key, PartNumber=2)), sha256(parts[1]))

    def test_transfer_manager(self):
        data = os.urandom(30 * MiB + 123)
        cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
            with open(src, "wb") as f:
                f.write(data)
            self.s3.upload_file(src, self.bucket, "managed/file.bin", Config=cfg)
            self.s3.download_file(self.bucket, "managed/file.bin", dst, Config=cfg)
            with open(dst, "rb") as f:
                self.assertEqual(sha256(f.read()), sha256(data))
        etag = self.s3.head_object(Bucket=self.bucket, Key="managed/file.bin")["ETag"]
        self.assertTrue(etag.endswith('-4"'), etag)

    def test_ranged_get(self):
        data = os.urandom(3 * MiB + 7)
        self.s3.put_object(Bucket=self.bucket, Key="ranged", Body=data)
        for rng, want in [
            ("bytes=0-99", data[:100]),
            ("bytes=100-199", data[100:200]),
            ("bytes=%d-" % (len(data) - 50), data[-50:]),
            ("bytes=-10", data[-10:]),
            ("bytes=1048570-2097160", data[1048570:2097161]),
        ]:
            r = self.s3.get_object(Bucket=self.bucket, Key="ranged", Range=rng)
            self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 206, rng)
            self.assertEqual(sha256(r["Body"].read()), sha256(want), rng)
        with self.assertRaises(ClientError) as cm:
            self.s3.get_object(Bucket=self.bucket, Key="ranged", Range="bytes=%d-" % len(data))
        self.assertEqual(error_code(cm.exception), ("InvalidRange", 416))

    def test_copy(self):
        data = os.urandom(200 * 1024)
        self.s3.put_object(Bucket=self.bucket, Key="copy/src key", Body=data, ContentType="text/x-src", Metadata={"color": "blue"})
        self.s3.copy_object(Bucket=self.bucket, Key="copy/kept", CopySource={"Bucket": self.bucket, "Key": "copy/src key"})
        head = self.s3.head_object(Bucket=self.bucket, Key="copy/kept")
        self.assertEqual((head["ContentType"], head["Metadata"]), ("text/x-src", {"color": "blue"}))
        self.s3.copy_object(
            Bucket=self.bucket, Key="copy/replaced", CopySource={"Bucket": self.bucket, "Key": "copy/src key"},
            MetadataDirective="REPLACE", ContentType="text/x-new", Metadata={"shape": "round"},
        )
        head = self.s3.head_object(Bucket=self.bucket, Key="copy/replaced")
        self.assertEqual((head["ContentType"], head["Metadata"]), ("text/x-new", {"shape": "round"}))
        for key in ("copy/kept", "copy/replaced"):
            self.assertEqual(sha256(self.get(key)), sha256(data))
        # The managed copy of a large object goes through UploadPartCopy.
        big = os.urandom(12 * MiB)
        self.s3.put_object(Bucket=self.bucket, Key="copy/big", Body=big)
        self.s3.copy({"Bucket": self.bucket, "Key": "copy/big"}, self.bucket, "copy/big-copy",
                     Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
        self.assertEqual(sha256(self.get("copy/big-copy")), sha256(big))
        with self.assertRaises(ClientError) as cm:
            self.s3.copy_object(Bucket=self.bucket, Key="copy/kept", CopySource={"Bucket": self.bucket, "Key": "copy/kept"})
        self.assertEqual(error_code(cm.exception), ("InvalidRequest", 400))

    def test_batch_delete(self):
        keys = ["batch/%03d" % i for i in range(60)]
        for k in keys:
            self.s3.put_object(Bucket=self.bucket, Key=k, Body=k.encode())
        r = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[:40]]})
        self.assertEqual(sorted(d["Key"] for d in r["Deleted"]), keys[:40])
        self.assertEqual(r.get("Errors", []), [])
        r = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[40:50]], "Quiet": True})
        self.assertEqual(r.get("Deleted", []), [])
        left = [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket, Prefix="batch/").get("Contents", [])]
        self.assertEqual(left, keys[50:])
        for k in left:
            self.assertEqual(self.get(k), k.encode())

    def test_errors(self):
        with self.assertRaises(ClientError) as cm:
            self.s3.get_object(Bucket=self.bucket, Key="no/such/key")
        self.assertEqual(error_code(cm.exception), ("NoSuchKey", 404))
        with self.assertRaises(ClientError) as cm:
            self.s3.get_object(Bucket="no-such-bucket-boto3", Key="k")
        self.assertEqual(error_code(cm.exception), ("NoSuchBucket", 404))
        with self.assertRaises(ClientError) as cm:
            self.s3.put_object(Bucket=self.bucket, Key="k" * 1025, Body=b"x")
        self.assertEqual(error_code(cm.exception), ("KeyTooLongError", 400))
        with self.assertRaises(ClientError) as cm:
            self.s3.create_bucket(Bucket="Invalid_Name")
        self.assertEqual(error_code(cm.exception)[0], "InvalidBucketName")

    def test_listing_with_odd_keys(self):
        # boto3 asks for encoding-type=url and decodes the answer.
        keys = ["odd/a b", "odd/a+b", "odd/é", "odd/x&y<z>", "odd/sub/1"]
        for k in keys:
            self.s3.put_object(Bucket=self.bucket, Key=k, Body=b"x")
        r = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="odd/", Delimiter="/")
        self.assertEqual(sorted(o["Key"] for o in r["Contents"]), sorted(keys[:4]))
        self.assertEqual([p["Prefix"] for p in r["CommonPrefixes"]], ["odd/sub/"])
        r = self.s3.list_objects(Bucket=self.bucket, Prefix="odd/", MaxKeys=2)
        self.assertTrue(r["IsTruncated"])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
