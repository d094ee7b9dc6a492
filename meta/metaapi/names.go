package metaapi

import (
	"fmt"
	"net/netip"
	"unicode/utf8"
)

// MaxKeyLen is S3's limit on object key length, in bytes.
const MaxKeyLen = 1024

// ValidateBucketName applies S3's bucket naming rules: 3 to 63 characters of
// lowercase letters, digits, dots and hyphens, starting and ending with a
// letter or digit, no adjacent dots, not shaped like an IP address.
func ValidateBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("%w: bucket name %q must be 3 to 63 characters long", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '.' || c == '-':
			if i == 0 || i == len(name)-1 {
				return fmt.Errorf("%w: bucket name %q must start and end with a letter or digit", ErrInvalidName, name)
			}
			if c == '.' && (name[i-1] == '.' || name[i-1] == '-' || name[i+1] == '-') {
				return fmt.Errorf("%w: bucket name %q has an empty or malformed label", ErrInvalidName, name)
			}
		default:
			return fmt.Errorf("%w: bucket name %q may hold only lowercase letters, digits, dots and hyphens", ErrInvalidName, name)
		}
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("%w: bucket name %q must not be an IP address", ErrInvalidName, name)
	}
	return nil
}

// ValidateKey applies S3's key rules: 1 to 1024 bytes of valid UTF-8.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: object key is empty", ErrInvalidName)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: object key is %d bytes, longer than %d", ErrInvalidName, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: object key is not valid UTF-8", ErrInvalidName)
	}
	return nil
}
