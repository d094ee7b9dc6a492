package s3err

import "net/http"

func e(code string, status int, msg string) *Error {
	return &Error{Code: code, Message: msg, HTTPStatus: status}
}

// Authentication and signing.
var (
	ErrAccessDenied                      = e("AccessDenied", http.StatusForbidden, "Access Denied")
	ErrCORSNotEnabled                    = e("AccessForbidden", http.StatusForbidden, "CORSResponse: CORS is not enabled for this bucket.")
	ErrAuthorizationHeaderMalformed      = e("AuthorizationHeaderMalformed", http.StatusBadRequest, "The authorization header is malformed.")
	ErrAuthorizationQueryParametersError = e("AuthorizationQueryParametersError", http.StatusBadRequest, "Error parsing the query-string authentication parameters.")
	ErrExpiredToken                      = e("ExpiredToken", http.StatusBadRequest, "The provided token has expired.")
	ErrInvalidAccessKeyID                = e("InvalidAccessKeyId", http.StatusForbidden, "The AWS Access Key Id you provided does not exist in our records.")
	ErrInvalidToken                      = e("InvalidToken", http.StatusBadRequest, "The provided token is malformed or otherwise invalid.")
	ErrMissingSecurityHeader             = e("MissingSecurityHeader", http.StatusBadRequest, "Your request was missing a required header.")
	ErrRequestTimeTooSkewed              = e("RequestTimeTooSkewed", http.StatusForbidden, "The difference between the request time and the current time is too large.")
	ErrSignatureDoesNotMatch             = e("SignatureDoesNotMatch", http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")

	// The AccessDenied variants below are what S3 sends in these cases;
	// they match ErrAccessDenied under errors.Is.
	ErrExpiredPresignedRequest = e("AccessDenied", http.StatusForbidden, "Request has expired")
	ErrRequestNotYetValid      = e("AccessDenied", http.StatusForbidden, "Request is not valid yet")
	ErrHeadersNotSigned        = e("AccessDenied", http.StatusForbidden, "There were headers present in the request which were not signed")
	ErrMissingDate             = e("AccessDenied", http.StatusForbidden, "AWS authentication requires a valid Date or x-amz-date header")
)

// Request validation.
var (
	ErrBadDigest                     = e("BadDigest", http.StatusBadRequest, "The Content-MD5 you specified did not match what we received.")
	ErrBadRequest                    = e("BadRequest", http.StatusBadRequest, "Bad Request")
	ErrEntityTooLarge                = e("EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size.")
	ErrEntityTooSmall                = e("EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size.")
	ErrIncompleteBody                = e("IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	ErrInvalidArgument               = e("InvalidArgument", http.StatusBadRequest, "Invalid Argument")
	ErrInvalidBucketName             = e("InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid.")
	ErrInvalidDigest                 = e("InvalidDigest", http.StatusBadRequest, "The Content-MD5 you specified is not valid.")
	ErrInvalidLocationConstraint     = e("InvalidLocationConstraint", http.StatusBadRequest, "The specified location-constraint is not valid.")
	ErrInvalidPart                   = e("InvalidPart", http.StatusBadRequest, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
	ErrInvalidPartOrder              = e("InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
	ErrInvalidRequest                = e("InvalidRequest", http.StatusBadRequest, "Invalid Request")
	ErrInvalidStorageClass           = e("InvalidStorageClass", http.StatusBadRequest, "The storage class you specified is not valid.")
	ErrInvalidTag                    = e("InvalidTag", http.StatusBadRequest, "The tag provided was not a valid tag.")
	ErrInvalidURI                    = e("InvalidURI", http.StatusBadRequest, "Couldn't parse the specified URI.")
	ErrKeyTooLong                    = e("KeyTooLongError", http.StatusBadRequest, "Your key is too long.")
	ErrMalformedPOSTRequest          = e("MalformedPOSTRequest", http.StatusBadRequest, "The body of your POST request is not well-formed multipart/form-data.")
	ErrMalformedTrailer              = e("MalformedTrailerError", http.StatusBadRequest, "The request contained trailing data that was not well-formed or did not conform to our published schema.")
	ErrMalformedXML                  = e("MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema.")
	ErrMaxMessageLengthExceeded      = e("MaxMessageLengthExceeded", http.StatusBadRequest, "Your request was too big.")
	ErrMetadataTooLarge              = e("MetadataTooLarge", http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size.")
	ErrMissingContentLength          = e("MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header.")
	ErrMissingRequestBody            = e("MissingRequestBodyError", http.StatusBadRequest, "Request Body is empty.")
	ErrRequestHeaderSectionTooLarge  = e("RequestHeaderSectionTooLarge", http.StatusBadRequest, "Your request header section exceeds the maximum allowed size.")
	ErrRequestTimeout                = e("RequestTimeout", http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period.")
	ErrTooManyBuckets                = e("TooManyBuckets", http.StatusBadRequest, "You have attempted to create more buckets than allowed.")
	ErrUnexpectedContent             = e("UnexpectedContent", http.StatusBadRequest, "This request does not support content.")
	ErrXAmzContentSHA256Mismatch     = e("XAmzContentSHA256Mismatch", http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	ErrAccessControlListNotSupported = e("AccessControlListNotSupported", http.StatusBadRequest, "The bucket does not allow ACLs.")
	ErrMalformedACL                  = e("MalformedACLError", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema.")
	ErrUnresolvableGrantByEmail      = e("UnresolvableGrantByEmailAddress", http.StatusBadRequest, "The email address you provided does not match any account on record.")
)

// Resource state.
var (
	ErrBucketAlreadyExists        = e("BucketAlreadyExists", http.StatusConflict, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")
	ErrBucketAlreadyOwnedByYou    = e("BucketAlreadyOwnedByYou", http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it.")
	ErrBucketNotEmpty             = e("BucketNotEmpty", http.StatusConflict, "The bucket you tried to delete is not empty.")
	ErrConditionalRequestConflict = e("ConditionalRequestConflict", http.StatusConflict, "A conflicting operation occurred. Retry the request.")
	ErrInvalidBucketState         = e("InvalidBucketState", http.StatusConflict, "The request is not valid with the current state of the bucket.")
	ErrInvalidObjectState         = e("InvalidObjectState", http.StatusForbidden, "The operation is not valid for the current state of the object.")
	ErrInvalidPartNumber          = e("InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable, "The requested partnumber is not satisfiable.")
	ErrInvalidRange               = e("InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable.")
	ErrMethodNotAllowed           = e("MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource.")
	ErrNotModified                = e("NotModified", http.StatusNotModified, "Not Modified")
	ErrOperationAborted           = e("OperationAborted", http.StatusConflict, "A conflicting conditional operation is currently in progress against this resource. Try again.")
	ErrPreconditionFailed         = e("PreconditionFailed", http.StatusPreconditionFailed, "At least one of the preconditions you specified did not hold.")

	ErrNoSuchBucket                  = e("NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist.")
	ErrNoSuchBucketPolicy            = e("NoSuchBucketPolicy", http.StatusNotFound, "The bucket policy does not exist.")
	ErrNoSuchCORSConfiguration       = e("NoSuchCORSConfiguration", http.StatusNotFound, "The CORS configuration does not exist.")
	ErrNoSuchKey                     = e("NoSuchKey", http.StatusNotFound, "The specified key does not exist.")
	ErrNoSuchLifecycleConfiguration  = e("NoSuchLifecycleConfiguration", http.StatusNotFound, "The lifecycle configuration does not exist.")
	ErrNoSuchTagSet                  = e("NoSuchTagSet", http.StatusNotFound, "The TagSet does not exist.")
	ErrNoSuchUpload                  = e("NoSuchUpload", http.StatusNotFound, "The specified multipart upload does not exist. The upload ID might not be valid, or the multipart upload might have been aborted or completed.")
	ErrNoSuchVersion                 = e("NoSuchVersion", http.StatusNotFound, "The specified version does not exist.")
	ErrObjectLockConfigurationAbsent = e("ObjectLockConfigurationNotFoundError", http.StatusNotFound, "Object Lock configuration does not exist for this bucket.")
	ErrOwnershipControlsNotFound     = e("OwnershipControlsNotFoundError", http.StatusNotFound, "The bucket ownership controls were not found.")
	ErrSSEConfigurationNotFound      = e("ServerSideEncryptionConfigurationNotFoundError", http.StatusNotFound, "The server side encryption configuration was not found.")
)

// Server side.
var (
	ErrInternalError      = e("InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again.")
	ErrNotImplemented     = e("NotImplemented", http.StatusNotImplemented, "A header you provided implies functionality that is not implemented.")
	ErrServiceUnavailable = e("ServiceUnavailable", http.StatusServiceUnavailable, "Service is unable to handle request.")
	ErrSlowDown           = e("SlowDown", http.StatusServiceUnavailable, "Please reduce your request rate.")
)
