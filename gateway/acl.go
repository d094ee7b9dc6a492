package gateway

import (
	"errors"
	"net/http"

	"github.com/talusfs/talus/gateway/internal/s3auth"
	"github.com/talusfs/talus/gateway/internal/s3err"
	"github.com/talusfs/talus/meta/metaapi"
)

// Canned ACLs talus stores and enforces, on buckets (metaapi.Bucket.ACL)
// and on objects (Meta[keyACL]). Private is stored as "".
//
// Grants follow S3's ACL model: a bucket's READ lets the grantee list it,
// its WRITE lets the grantee create, overwrite and delete objects in it; an
// object's READ lets the grantee read that object. A bucket's ACL grants
// nothing on the objects in it, so a public-read bucket lists its keys to
// everyone but serves only the objects that are public-read themselves.
const (
	aclPrivate           = ""
	aclPublicRead        = "public-read"
	aclPublicReadWrite   = "public-read-write"
	aclAuthenticatedRead = "authenticated-read"
)

// keyACL is the Meta key holding an object's canned ACL.
const keyACL = "x-amz-acl"

// Grantee group URIs, as S3 writes them in ACL documents.
const (
	allUsersURI           = "http://acs.amazonaws.com/groups/global/AllUsers"
	authenticatedUsersURI = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
)

// parseCannedACL reads an x-amz-acl value and returns the ACL to store.
// Owner-only ACLs are private: an object's owner in talus is its bucket's
// owner, so bucket-owner-read and bucket-owner-full-control grant nobody
// else anything (and S3 ignores them on buckets). ACLs granting to AWS's
// own services (EC2, log delivery) have no meaning here.
func parseCannedACL(v string) (string, error) {
	switch v {
	case "", "private", "bucket-owner-read", "bucket-owner-full-control":
		return aclPrivate, nil
	case aclPublicRead, aclPublicReadWrite, aclAuthenticatedRead:
		return v, nil
	case "aws-exec-read", "log-delivery-write":
		return "", s3err.ErrNotImplemented.WithMessage("The canned ACL " + v + " is not implemented.")
	}
	return "", s3err.ErrInvalidArgument.WithMessage("Invalid canned ACL: " + v)
}

// requestACL reads the canned ACL a request asks for. ACL grant headers
// (x-amz-grant-*) are refused by unsupportedHeaders.
func requestACL(h http.Header) (string, error) {
	return parseCannedACL(h.Get("X-Amz-Acl"))
}

// permission is what an operation needs on a bucket.
type permission int

const (
	// permOwner: only the owner (and users given the bucket) may act.
	permOwner permission = iota
	// permRead: the ACL's READ is enough (listing).
	permRead
	// permWrite: the ACL's WRITE is enough (creating and deleting objects).
	permWrite
)

// grants reports whether a canned ACL gives caller the permission. READ
// and WRITE are the only permissions canned ACLs grant to anyone but the
// owner.
func grants(acl string, perm permission, caller *identity) bool {
	switch perm {
	case permRead:
		return acl == aclPublicRead || acl == aclPublicReadWrite || acl == aclAuthenticatedRead && !caller.anonymous
	case permWrite:
		return acl == aclPublicReadWrite
	}
	return false
}

// policyFor renders a canned ACL as S3 reports it: the group grants, then
// the owner's full control.
func policyFor(owner ownerXML, acl string) *accessControlPolicy {
	p := &accessControlPolicy{Owner: owner}
	switch acl {
	case aclPublicRead:
		p.AccessControlList.Grant = []grantXML{groupGrant(allUsersURI, "READ")}
	case aclPublicReadWrite:
		p.AccessControlList.Grant = []grantXML{groupGrant(allUsersURI, "READ"), groupGrant(allUsersURI, "WRITE")}
	case aclAuthenticatedRead:
		p.AccessControlList.Grant = []grantXML{groupGrant(authenticatedUsersURI, "READ")}
	}
	var gr grantXML
	gr.Grantee.XMLNSXSI = xsiNS
	gr.Grantee.Type = "CanonicalUser"
	gr.Grantee.ID, gr.Grantee.DisplayName = owner.ID, owner.DisplayName
	gr.Permission = "FULL_CONTROL"
	p.AccessControlList.Grant = append(p.AccessControlList.Grant, gr)
	return p
}

const xsiNS = "http://www.w3.org/2001/XMLSchema-instance"

func groupGrant(uri, perm string) grantXML {
	var gr grantXML
	gr.Grantee.XMLNSXSI = xsiNS
	gr.Grantee.Type = "Group"
	gr.Grantee.URI = uri
	gr.Permission = perm
	return gr
}

// aclInput is an AccessControlPolicy as clients send it, in whatever
// namespace.
type aclInput struct {
	Owner  string `xml:"Owner>ID"`
	Grants []struct {
		ID         string `xml:"Grantee>ID"`
		URI        string `xml:"Grantee>URI"`
		Email      string `xml:"Grantee>EmailAddress"`
		Permission string
	} `xml:"AccessControlList>Grant"`
}

// cannedFromPolicy finds the canned ACL an AccessControlPolicy document
// is equivalent to. owner is the resource owner's ID; the document must
// name that owner and grant it FULL_CONTROL, since talus cannot take the
// owner's access away. known reports whether a grantee ID is a user:
// grants to nobody are refused as S3 refuses them, before grants to
// somebody are found unsupported.
func cannedFromPolicy(p *aclInput, owner string, known func(id string) (bool, error)) (string, error) {
	notImpl := s3err.ErrNotImplemented.WithMessage("Only ACLs equivalent to a canned ACL (private, public-read, public-read-write, authenticated-read) are supported.")
	if p.Owner != "" && p.Owner != owner {
		return "", s3err.ErrAccessDenied.WithMessage("The owner in the ACL is not the resource's owner.")
	}
	for _, gr := range p.Grants {
		switch gr.Permission {
		case "READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL":
		default:
			return "", s3err.ErrMalformedACL.WithMessage("Invalid permission: " + gr.Permission)
		}
		switch {
		case gr.Email != "":
			// talus users have no e-mail address.
			return "", s3err.ErrUnresolvableGrantByEmail
		case gr.ID != "" && gr.ID != owner:
			ok, err := known(gr.ID)
			if err != nil {
				return "", err
			}
			if !ok {
				return "", s3err.ErrInvalidArgument.WithMessage("Invalid id")
			}
		}
	}
	var ownerFull, allRead, allWrite, authRead bool
	for _, gr := range p.Grants {
		switch {
		case gr.URI == "" && gr.ID == owner && gr.Permission == "FULL_CONTROL":
			ownerFull = true
		case gr.ID == "" && gr.URI == allUsersURI && gr.Permission == "READ":
			allRead = true
		case gr.ID == "" && gr.URI == allUsersURI && gr.Permission == "WRITE":
			allWrite = true
		case gr.ID == "" && gr.URI == authenticatedUsersURI && gr.Permission == "READ":
			authRead = true
		default:
			return "", notImpl
		}
	}
	switch {
	case !ownerFull:
		return "", notImpl
	case allRead && allWrite && !authRead:
		return aclPublicReadWrite, nil
	case allRead && !allWrite && !authRead:
		return aclPublicRead, nil
	case authRead && !allRead && !allWrite:
		return aclAuthenticatedRead, nil
	case !allRead && !allWrite && !authRead:
		return aclPrivate, nil
	}
	return "", notImpl
}

// aclRequest reads the ACL a PutBucketAcl or PutObjectAcl asks for: a
// canned ACL in x-amz-acl or an AccessControlPolicy document in the body,
// not both. owner is the resource owner's ID.
func (g *Gateway) aclRequest(q *request, owner string) (string, error) {
	if err := unsupportedHeaders(q.r.Header); err != nil {
		return "", err
	}
	canned, hasCanned := q.r.Header["X-Amz-Acl"]
	if q.bodyLength() == 0 {
		if !hasCanned {
			return "", s3err.ErrMissingSecurityHeader.WithMessage("Your request was missing a required header: x-amz-acl.")
		}
		return parseCannedACL(canned[0])
	}
	if hasCanned {
		return "", s3err.ErrInvalidRequest.WithMessage("Specify either a canned ACL or an access control policy, not both.")
	}
	var p aclInput
	if err := readXML(q, 64<<10, &p); err != nil {
		return "", err
	}
	return cannedFromPolicy(&p, owner, func(id string) (bool, error) {
		_, err := g.users.Secret(q.ctx(), id)
		if errors.Is(err, s3auth.ErrUnknownKey) {
			return false, nil
		}
		return err == nil, err
	})
}

// bucketACL is what a bucket lookup yields for access checks.
type bucketACL struct {
	owner string
	acl   string
}

// ownerID is the ID S3 documents show for the bucket's owner.
func (g *Gateway) ownerID(owner string) string {
	if owner == "" {
		return g.cfg.RootAccessKey
	}
	return owner
}

// objectACL returns an object's stored canned ACL.
func objectACL(o *metaapi.Object) string { return o.Meta[keyACL] }

// withACL returns meta with the object ACL acl recorded (or removed, for
// private), allocating a map only when needed.
func withACL(meta map[string]string, acl string) map[string]string {
	if acl == aclPrivate {
		delete(meta, keyACL)
		return meta
	}
	if meta == nil {
		meta = make(map[string]string, 1)
	}
	meta[keyACL] = acl
	return meta
}
