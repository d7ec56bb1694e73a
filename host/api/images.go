package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ImagesBackend is the container runtime's image store the API serves
// under /v1/images. A Backend that also implements it gets the endpoint.
type ImagesBackend interface {
	// ImportImage imports the image archive read from r (an OCI image
	// layout or docker-archive tar) and returns the images it brought
	// in; ErrRefused for a file that is not such an archive, ErrNotFound
	// when the runtime module is off.
	ImportImage(ctx context.Context, r io.Reader) ([]Image, error)
}

// Image is one image an import brought into the runtime.
type Image struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	Size uint64 `json:"size"`
}

// ImageList is the document POST /v1/images returns.
type ImageList struct {
	Images []Image `json:"images"`
}

// maxImageArchive bounds an uploaded image archive.
const maxImageArchive = 8 << 30

func (s *Server) registerImages(ib ImagesBackend) {
	s.mux.HandleFunc("POST /v1/images", func(w http.ResponseWriter, r *http.Request) {
		imgs, err := ib.ImportImage(r.Context(), r.Body) // bounded by ServeHTTP
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("image archive over %d bytes", int64(maxImageArchive)))
			return
		}
		if err != nil {
			s.log.Warn("image import failed", "error", err)
		}
		metaReply(w, ImageList{Images: imgs}, err)
	})
}

// ImportImage uploads an image archive (POST /v1/images) for the daemon
// to import into its container runtime.
func (c *Client) ImportImage(ctx context.Context, archive io.Reader) ([]Image, error) {
	var l ImageList
	err := c.doStream(ctx, http.MethodPost, "/v1/images", archive, "application/x-tar", &l)
	return l.Images, err
}
