package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/chat"
)

// mediaTimeout bounds one image download.
const mediaTimeout = 2 * time.Minute

// errTooLarge reports an image above MATRIX_MAX_MEDIA_BYTES.
var errTooLarge = errors.New("the image is larger than MATRIX_MAX_MEDIA_BYTES")

// downloadImage fetches an m.image's file from the homeserver (mxc:// only),
// decrypts it when it came encrypted, and returns it as an attachment.
func (a *Adapter) downloadImage(ctx context.Context, c *conn, content *event.MessageEventContent) (*chat.Attachment, error) {
	raw, file := content.URL, (*event.EncryptedFileInfo)(nil)
	if content.File != nil {
		raw, file = content.File.URL, content.File
	}
	if !strings.HasPrefix(string(raw), "mxc://") {
		return nil, fmt.Errorf("not an mxc:// URL: %q", raw)
	}
	uri, err := raw.Parse()
	if err != nil {
		return nil, err
	}
	limit := a.opts.MaxMediaBytes
	if info := content.Info; info != nil && int64(info.Size) > limit {
		return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, info.Size)
	}
	ctx, cancel := context.WithTimeout(ctx, mediaTimeout)
	defer cancel()
	data, err := a.fetchMedia(ctx, c, uri, limit)
	if err != nil {
		return nil, err
	}
	if file != nil {
		if err := file.DecryptInPlace(data); err != nil {
			return nil, fmt.Errorf("decrypting the image: %w", err)
		}
	}
	mime := ""
	if content.Info != nil {
		mime = content.Info.MimeType
	}
	if mime == "" {
		mime = http.DetectContentType(data)
	}
	if !strings.HasPrefix(mime, "image/") {
		return nil, fmt.Errorf("not an image: %s", mime)
	}
	return &chat.Attachment{Kind: "image", MIMEType: mime, Name: content.GetFileName(), Data: data}, nil
}

// fetchMedia downloads a file of at most limit bytes, with the
// authenticated media API, or the older one where that is missing.
func (a *Adapter) fetchMedia(ctx context.Context, c *conn, uri id.ContentURI, limit int64) ([]byte, error) {
	resp, err := c.cli.Download(ctx, uri)
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil &&
		(httpErr.Response.StatusCode == http.StatusNotFound || httpErr.Response.StatusCode == http.StatusBadRequest) &&
		httpErr.RespError != nil && httpErr.RespError.ErrCode == mautrix.MUnrecognized.ErrCode {
		resp, err = a.legacyDownload(ctx, c, uri)
	}
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, resp.ContentLength)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", uri, err)
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}

// legacyDownload uses /_matrix/media/v3/download, for homeservers without
// authenticated media.
func (a *Adapter) legacyDownload(ctx context.Context, c *conn, uri id.ContentURI) (*http.Response, error) {
	_, resp, err := c.cli.MakeFullRequestWithResp(ctx, mautrix.FullRequest{
		Method:           http.MethodGet,
		URL:              c.cli.BuildURL(mautrix.MediaURLPath{"v3", "download", uri.Homeserver, uri.FileID}),
		DontReadResponse: true,
	})
	return resp, err
}
