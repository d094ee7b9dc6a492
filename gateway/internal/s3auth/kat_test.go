package s3auth

// Known-answer tests: the examples in the AWS S3 documentation for
// Signature Version 4 ("Signature Calculations for the Authorization
// Header", "Query String Authentication", "Transferring Payload in Multiple
// Chunks"), signed by AWS with its example key, sent over a real HTTP
// connection.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	docAccessKey = "AKIAIOSFODNN7EXAMPLE"
	docSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	docDate      = "20130524T000000Z"
	docCred      = docAccessKey + "/20130524/us-east-1/s3/aws4_request"
)

var docTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func docVerifier(now time.Time) *Verifier {
	return &Verifier{Creds: memCreds{docAccessKey: docSecret}, Now: fixedNow(now)}
}

type docRequest struct {
	method, target, host string
	headers              [][2]string
	body                 []byte
}

func (d docRequest) send(t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequest(d.method, url+d.target, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	if d.body == nil {
		req.Body = nil
	}
	req.Host = d.host
	for _, h := range d.headers {
		req.Header.Add(h[0], h[1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}

func docAuth(signedHeaders, sig string) string {
	return "AWS4-HMAC-SHA256 Credential=" + docCred + ",SignedHeaders=" + signedHeaders + ",Signature=" + sig
}

func docHeaderExamples() map[string]docRequest {
	return map[string]docRequest{
		"GET Object": {
			method: "GET", target: "/test.txt", host: "examplebucket.s3.amazonaws.com",
			headers: [][2]string{
				{"Range", "bytes=0-9"},
				{"x-amz-content-sha256", emptySHA256},
				{"x-amz-date", docDate},
				{"Authorization", docAuth("host;range;x-amz-content-sha256;x-amz-date",
					"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")},
			},
		},
		"PUT Object": {
			method: "PUT", target: "/test$file.text", host: "examplebucket.s3.amazonaws.com",
			headers: [][2]string{
				{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
				{"x-amz-date", docDate},
				{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
				{"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
				{"Authorization", docAuth("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
					"98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")},
			},
			body: []byte("Welcome to Amazon S3."),
		},
		"GET Bucket Lifecycle": {
			method: "GET", target: "/?lifecycle", host: "examplebucket.s3.amazonaws.com",
			headers: [][2]string{
				{"x-amz-date", docDate},
				{"x-amz-content-sha256", emptySHA256},
				{"Authorization", docAuth("host;x-amz-content-sha256;x-amz-date",
					"fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")},
			},
		},
		"GET Bucket (List Objects)": {
			method: "GET", target: "/?max-keys=2&prefix=J", host: "examplebucket.s3.amazonaws.com",
			headers: [][2]string{
				{"x-amz-date", docDate},
				{"x-amz-content-sha256", emptySHA256},
				{"Authorization", docAuth("host;x-amz-content-sha256;x-amz-date",
					"34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")},
			},
		},
	}
}

func TestDocumentedHeaderExamples(t *testing.T) {
	f, srv := startFake(t, docVerifier(docTime), false)
	for name, d := range docHeaderExamples() {
		d.send(t, srv.URL)
		o := f.last(t)
		wantCode(t, name, o.err, "")
		if o.err == nil && (o.res.AccessKey != docAccessKey || o.res.Region != "us-east-1" || o.res.Anonymous || o.res.Presigned) {
			t.Errorf("%s: result %+v", name, o.res)
		}
		if o.err == nil && !bytes.Equal(o.body, d.body) {
			t.Errorf("%s: body %q", name, o.body)
		}
	}
}

// Each documented request, changed in one signed detail, must be refused.
func TestDocumentedHeaderExamplesTampered(t *testing.T) {
	f, srv := startFake(t, docVerifier(docTime), false)
	ex := docHeaderExamples()
	set := func(d docRequest, name, value string) docRequest {
		d.headers = append([][2]string(nil), d.headers...)
		for i, h := range d.headers {
			if strings.EqualFold(h[0], name) {
				d.headers[i][1] = value
				return d
			}
		}
		d.headers = append(d.headers, [2]string{name, value})
		return d
	}
	get, put, list := ex["GET Object"], ex["PUT Object"], ex["GET Bucket (List Objects)"]
	for _, tc := range []struct {
		name string
		d    docRequest
		code string
	}{
		{"other range", set(get, "Range", "bytes=0-10"), "SignatureDoesNotMatch"},
		{"other key", func() docRequest { d := get; d.target = "/test.txu"; return d }(), "SignatureDoesNotMatch"},
		{"other host", func() docRequest { d := get; d.host = "otherbucket.s3.amazonaws.com"; return d }(), "SignatureDoesNotMatch"},
		{"other method", func() docRequest { d := get; d.method = "DELETE"; return d }(), "SignatureDoesNotMatch"},
		{"other query value", func() docRequest { d := list; d.target = "/?max-keys=3&prefix=J"; return d }(), "SignatureDoesNotMatch"},
		{"extra query parameter", func() docRequest { d := list; d.target += "&delimiter=/"; return d }(), "SignatureDoesNotMatch"},
		{"other body", func() docRequest { d := put; d.body = []byte("Welcome to Amazon S4."); return d }(), "XAmzContentSHA256Mismatch"},
		{"other storage class", set(put, "x-amz-storage-class", "STANDARD"), "SignatureDoesNotMatch"},
		{"unsigned x-amz header", set(get, "x-amz-acl", "public-read"), "AccessDenied"},
		{"unknown key", set(get, "Authorization", strings.Replace(get.headers[3][1], docAccessKey, "AKIAIOSFODNN7EXAMPLF", 1)), "InvalidAccessKeyId"},
		{"signature upper case", set(get, "Authorization", strings.Replace(get.headers[3][1], "f0e8bdb8", "F0E8BDB8", 1)), "SignatureDoesNotMatch"},
		{"short signature", set(get, "Authorization", strings.TrimSuffix(get.headers[3][1], "41")), "SignatureDoesNotMatch"},
		{"no date", func() docRequest {
			d := get
			d.headers = d.headers[:2:2]
			d.headers = append(d.headers, get.headers[3])
			return d
		}(), "AccessDenied"},
		{"bad x-amz-date", set(get, "x-amz-date", "2013-05-24T00:00:00Z"), "AccessDenied"},
		{"date not in scope", set(get, "x-amz-date", "20130525T000000Z"), "AuthorizationHeaderMalformed"},
	} {
		tc.d.send(t, srv.URL)
		wantCode(t, tc.name, f.last(t).err, tc.code)
	}
}

func TestDocumentedClockSkew(t *testing.T) {
	get := docHeaderExamples()["GET Object"]
	for _, tc := range []struct {
		now  time.Time
		code string
	}{
		{docTime.Add(14 * time.Minute), ""},
		{docTime.Add(-14 * time.Minute), ""},
		{docTime.Add(16 * time.Minute), "RequestTimeTooSkewed"},
		{docTime.Add(-16 * time.Minute), "RequestTimeTooSkewed"},
	} {
		f, srv := startFake(t, docVerifier(tc.now), false)
		get.send(t, srv.URL)
		wantCode(t, tc.now.String(), f.last(t).err, tc.code)
	}
}

const docPresigned = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
	"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

func TestDocumentedPresignedExample(t *testing.T) {
	for _, tc := range []struct {
		name   string
		now    time.Time
		target string
		code   string
	}{
		{"at signing", docTime, docPresigned, ""},
		{"last second", docTime.Add(24 * time.Hour), docPresigned, ""},
		{"expired", docTime.Add(24*time.Hour + time.Second), docPresigned, "AccessDenied"},
		{"not yet valid", docTime.Add(-time.Hour), docPresigned, "AccessDenied"},
		{"longer expiry", docTime, strings.Replace(docPresigned, "Expires=86400", "Expires=86401", 1), "SignatureDoesNotMatch"},
		{"added parameter", docTime, docPresigned + "&versionId=1", "SignatureDoesNotMatch"},
		{"expiry over a week", docTime, strings.Replace(docPresigned, "Expires=86400", "Expires=604801", 1), "AuthorizationQueryParametersError"},
		{"expiry not a number", docTime, strings.Replace(docPresigned, "Expires=86400", "Expires=1d", 1), "AuthorizationQueryParametersError"},
		{"negative expiry", docTime, strings.Replace(docPresigned, "Expires=86400", "Expires=-1", 1), "AuthorizationQueryParametersError"},
		{"no signed headers", docTime, strings.Replace(docPresigned, "&X-Amz-SignedHeaders=host", "", 1), "AuthorizationQueryParametersError"},
		{"other algorithm", docTime, strings.Replace(docPresigned, "Algorithm=AWS4-HMAC-SHA256", "Algorithm=AWS4-HMAC-SHA1", 1), "AuthorizationQueryParametersError"},
		{"bad date", docTime, strings.Replace(docPresigned, "Date=20130524T000000Z", "Date=2013-05-24", 1), "AuthorizationQueryParametersError"},
		{"bad credential", docTime, strings.Replace(docPresigned, "%2Fs3%2F", "%2Fec2%2F", 1), "AuthorizationQueryParametersError"},
		{"short credential", docTime, strings.Replace(docPresigned, "%2Faws4_request", "", 1), "AuthorizationQueryParametersError"},
		{"bad escape", docTime, docPresigned + "&x=%zz", "InvalidURI"},
	} {
		f, srv := startFake(t, docVerifier(tc.now), false)
		docRequest{method: "GET", target: tc.target, host: "examplebucket.s3.amazonaws.com"}.send(t, srv.URL)
		o := f.last(t)
		wantCode(t, tc.name, o.err, tc.code)
		if tc.code == "" && (!o.res.Presigned || o.res.AccessKey != docAccessKey) {
			t.Errorf("%s: result %+v", tc.name, o.res)
		}
	}
}

// The documentation's aws-chunked upload: 66560 bytes of 'a' in chunks of
// 65536, 1024 and 0 bytes.
func docChunked() docRequest {
	data := bytes.Repeat([]byte("a"), 65536+1024)
	var body bytes.Buffer
	body.WriteString("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n")
	body.Write(data[:65536])
	body.WriteString("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n")
	body.Write(data[65536:])
	body.WriteString("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
	return docRequest{
		method: "PUT", target: "/examplebucket/chunkObject.txt", host: "s3.amazonaws.com",
		headers: [][2]string{
			{"x-amz-date", docDate},
			{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"Authorization", docAuth("content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
				"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")},
			{"x-amz-content-sha256", streamingSigned},
			{"Content-Encoding", "aws-chunked"},
			{"x-amz-decoded-content-length", "66560"},
		},
		body: body.Bytes(),
	}
}

func TestDocumentedChunkedExample(t *testing.T) {
	d := docChunked()
	if len(d.body) != 66824 {
		t.Fatalf("encoded body is %d bytes, the documentation says 66824", len(d.body))
	}
	f, srv := startFake(t, docVerifier(docTime), false)
	d.send(t, srv.URL)
	o := f.last(t)
	wantCode(t, "documented upload", o.err, "")
	if !bytes.Equal(o.body, bytes.Repeat([]byte("a"), 66560)) {
		t.Errorf("decoded %d bytes", len(o.body))
	}
	if o.res == nil || o.res.DecodedLength != 66560 || o.res.Body == nil {
		t.Errorf("result %+v", o.res)
	}
}

func TestDocumentedChunkedExampleTampered(t *testing.T) {
	f, srv := startFake(t, docVerifier(docTime), false)
	good := docChunked().body
	sig1 := bytes.Index(good, []byte("ad80c730"))
	sig3 := bytes.Index(good, []byte("b6c6ea8a"))
	chunk2 := bytes.Index(good, []byte("400;")) + 87
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
		code string
	}{
		{"data byte in first chunk", func(b []byte) []byte { b[100] = 'b'; return b }, "SignatureDoesNotMatch"},
		{"data byte in last chunk", func(b []byte) []byte { b[chunk2+5] = 'b'; return b }, "SignatureDoesNotMatch"},
		{"first chunk signature", func(b []byte) []byte { b[sig1] = 'b'; return b }, "SignatureDoesNotMatch"},
		{"final chunk signature", func(b []byte) []byte { b[sig3+10] ^= 1; return b }, "SignatureDoesNotMatch"},
		{"signature not hex", func(b []byte) []byte { b[sig1] = 'g'; return b }, "SignatureDoesNotMatch"},
		{"data without CRLF", func(b []byte) []byte { b[chunk2+1024] = ' '; return b }, "IncompleteBody"},
		{"size not hex", func(b []byte) []byte { b[0] = 'x'; return b }, "IncompleteBody"},
		{"trailer after final chunk", func(b []byte) []byte {
			// Same length: the signed Content-Length must not change.
			return append(b[:len(b)-2], "a:"...)
		}, "MalformedTrailerError"},
	} {
		d := docChunked()
		d.body = tc.edit(d.body)
		if len(d.body) != len(good) {
			t.Fatalf("%s: changed the length", tc.name)
		}
		d.send(t, srv.URL)
		o := f.last(t)
		wantCode(t, tc.name, o.err, tc.code)
	}

	// A client that goes away early: Content-Length promises more than
	// arrives.
	for _, cut := range []int{40000, sig3 - len("0;chunk-signature="), len(good) - 2} {
		d := docChunked()
		d.sendTruncated(t, srv.Listener.Addr().String(), cut)
		wantCode(t, fmt.Sprintf("truncated at %d", cut), f.last(t).err, "IncompleteBody")
	}
}

// sendTruncated sends d with its full Content-Length but only the first n
// bytes of its body, then half-closes the connection.
func (d docRequest) sendTruncated(t *testing.T, addr string, n int) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", d.method, d.target, d.host, len(d.body))
	for _, h := range d.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	b.Write(d.body[:n])
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, conn) // until the server answers and closes
}
