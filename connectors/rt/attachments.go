package rt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// textBudget is how many bytes of files a ticket may carry for its parts to
// be read in one GET with their content; above it, only the parts without
// a file name (the messages' text) are read, with a JSON query.
const textBudget = 2 << 20

// parts lists the ticket's MIME parts: the parts without a file name with
// their content (the text of the messages), and the files (a part with a
// file name) as attachments, without their bytes. Two requests: the list
// without content, then the content — of every part in one GET when the
// files are small, otherwise of the text parts only (a POST query, which
// in session mode goes with basic auth).
func (c *conn) parts(ctx context.Context, id string) ([]attachment, []connectors.Attachment, error) {
	var all []attachment
	err := c.pages(ctx, "/ticket/"+id+"/attachments?fields=TransactionId,ContentType,Filename,ContentLength", func(raw json.RawMessage) error {
		var a attachment
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("%w: rt attachment: %w", connectors.ErrUnavailable, err)
		}
		all = append(all, a)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("rt attachments of ticket %s: %w", id, err)
	}
	var files []connectors.Attachment
	var fileBytes int64
	texts := 0
	for _, a := range all {
		size, _ := a.ContentLength.Int64()
		if a.Filename != "" {
			files = append(files, connectors.Attachment{ID: a.ID.String(), Name: a.Filename, Size: size,
				ContentType: strings.TrimSpace(strings.SplitN(a.ContentType, ";", 2)[0])})
			fileBytes += size
		} else if strings.HasPrefix(strings.ToLower(a.ContentType), "text/") {
			texts++
		}
	}
	if texts == 0 {
		return nil, files, nil
	}
	var text []attachment
	each := func(raw json.RawMessage) error {
		var a attachment
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("%w: rt attachment: %w", connectors.ErrUnavailable, err)
		}
		if a.Filename == "" {
			text = append(text, a)
		}
		return nil
	}
	if fileBytes <= textBudget {
		err = c.pages(ctx, "/ticket/"+id+"/attachments?fields=TransactionId,ContentType,Content,Filename", each)
	} else {
		err = c.queryPages(ctx, "/ticket/"+id+"/attachments?fields=TransactionId,ContentType,Content,Filename",
			[]map[string]string{{"field": "Filename", "operator": "IS", "value": "NULL"}}, each)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rt attachments of ticket %s: %w", id, err)
	}
	return text, files, nil
}

// queryPages is pages for a collection queried with a JSON body (POST).
func (c *conn) queryPages(ctx context.Context, path string, query any, each func(raw json.RawMessage) error) error {
	for page := 1; page <= 1000; page++ {
		var out struct {
			Items []json.RawMessage `json:"items"`
			Pages float64           `json:"pages"`
		}
		if err := c.do(ctx, "POST", fmt.Sprintf("%s&per_page=100&page=%d", path, page), query, &out); err != nil {
			return err
		}
		for _, it := range out.Items {
			if err := each(it); err != nil {
				return err
			}
		}
		if float64(page) >= out.Pages {
			return nil
		}
	}
	return fmt.Errorf("%w: rt: more than 1000 pages at %s", connectors.ErrInvalid, path)
}

// OpenAttachment streams a file's bytes. REST2 gives them base64-encoded
// in the Content of /attachment/:id; the answer is decoded as it arrives,
// never held whole.
func (c *conn) OpenAttachment(ctx context.Context, entityID string, att connectors.Attachment) (io.ReadCloser, error) {
	if n, err := strconv.ParseInt(att.ID, 10, 64); err != nil || n <= 0 {
		return nil, fmt.Errorf("%w: rt attachment id must be a positive number, got %q", connectors.ErrNotFound, att.ID)
	}
	client := c.http
	rc, _, err := client.Open(ctx, "/attachment/"+att.ID, nil)
	if err != nil && c.sess != nil && errors.Is(err, connectors.ErrBadConfig) {
		if lerr := c.sess.login(ctx); lerr != nil {
			return nil, lerr
		}
		rc, _, err = client.Open(ctx, "/attachment/"+att.ID, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("rt attachment %s of ticket %s: %w", att.ID, entityID, err)
	}
	br := bufio.NewReaderSize(rc, 32<<10)
	if err := findContent(br); err != nil {
		rc.Close()
		return nil, fmt.Errorf("rt attachment %s of ticket %s: %w", att.ID, entityID, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{base64.NewDecoder(base64.StdEncoding, &jsonString{br: br}), rc}, nil
}

// findContent reads a REST2 record up to the opening quote of the value of
// its top-level "Content" key, skipping everything else without keeping it.
func findContent(br *bufio.Reader) error {
	depth := 0
	for {
		b, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("%w: no Content in the answer: %w", connectors.ErrUnavailable, err)
		}
		switch b {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			key, err := readKey(br, depth == 1)
			if err != nil {
				return err
			}
			if depth != 1 || key != "Content" {
				continue
			}
			if c, err := nextNonSpace(br); err != nil || c != ':' {
				if err == nil {
					_ = br.UnreadByte()
				}
				continue
			}
			c, err := nextNonSpace(br)
			if err != nil {
				return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
			}
			if c != '"' {
				return fmt.Errorf("%w: the attachment has no content", connectors.ErrUnavailable)
			}
			return nil
		}
	}
}

// readKey reads a JSON string after its opening quote; it keeps at most 64
// bytes of it, and only when keep.
func readKey(br *bufio.Reader, keep bool) (string, error) {
	var buf []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return "", fmt.Errorf("%w: cut answer: %w", connectors.ErrUnavailable, err)
		}
		switch b {
		case '"':
			return string(buf), nil
		case '\\':
			if _, err := br.ReadByte(); err != nil {
				return "", fmt.Errorf("%w: cut answer: %w", connectors.ErrUnavailable, err)
			}
			keep = false // no key of interest has escapes
		default:
			if keep && len(buf) < 64 {
				buf = append(buf, b)
			}
		}
	}
}

func nextNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil || (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
			return b, err
		}
	}
}

// jsonString yields the characters of a JSON string of base64 text up to
// its closing quote: escaped line ends are dropped, "\/" is "/".
type jsonString struct {
	br   *bufio.Reader
	done bool
}

func (j *jsonString) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !j.done {
		b, err := j.br.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("%w: the attachment's content was cut off", connectors.ErrUnavailable)
			}
			return n, err
		}
		switch b {
		case '"':
			j.done = true
		case '\\':
			e, err := j.br.ReadByte()
			if err != nil {
				return n, fmt.Errorf("%w: the attachment's content was cut off", connectors.ErrUnavailable)
			}
			switch e {
			case 'n', 'r':
			case '/':
				p[n] = '/'
				n++
			default:
				return n, fmt.Errorf("%w: unexpected escape \\%c in base64 content", connectors.ErrUnavailable, e)
			}
		default:
			p[n] = b
			n++
		}
	}
	if n == 0 && j.done {
		return 0, io.EOF
	}
	return n, nil
}

// AddAttachment adds the file to the ticket as an internal comment without
// text (RT keeps files on transactions; a comment does not mail the
// requestor). The multipart body is streamed with its exact length. A
// request cut off is never processed by RT, so a retry leaves no duplicate.
// RT does not say which attachment it made: it is the newest file of this
// name and size on the ticket. RT keeps text files in UTF-8 and may drop or
// cut files over its MaxAttachmentSize; such a file fails with ErrInvalid.
func (c *conn) AddAttachment(ctx context.Context, entityID string, meta connectors.Attachment, r io.Reader) (connectors.Attachment, error) {
	id, err := parseID(entityID)
	if err != nil {
		return connectors.Attachment{}, err
	}
	if strings.TrimSpace(meta.Name) == "" {
		return connectors.Attachment{}, fmt.Errorf("%w: rt: an attachment needs a file name", connectors.ErrInvalid)
	}
	ct := meta.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	js, _ := json.Marshal(map[string]any{"Subject": "Attachment " + meta.Name})
	if err := mw.WriteField("JSON", string(js)); err != nil {
		return connectors.Attachment{}, err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="Attachments"; filename="%s"`, strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "").Replace(meta.Name)))
	h.Set("Content-Type", ct)
	if _, err := mw.CreatePart(h); err != nil {
		return connectors.Attachment{}, err
	}
	n := head.Len()
	_ = mw.Close() // the closing boundary, after the file
	all := head.Bytes()
	body := io.MultiReader(bytes.NewReader(all[:n]), r, bytes.NewReader(all[n:]))
	client := c.http
	if c.sess != nil {
		client = c.writer
	}
	var msgs []string
	if err := client.Send(ctx, "POST", "/ticket/"+id+"/comment", mw.FormDataContentType(), body, int64(len(all))+meta.Size, &msgs); err != nil {
		return connectors.Attachment{}, fmt.Errorf("rt attach %q to ticket %s: %w", meta.Name, id, err)
	}
	_, files, err := c.parts(ctx, id)
	if err != nil {
		return connectors.Attachment{}, err
	}
	var found *connectors.Attachment
	newest := int64(0)
	for i, f := range files {
		fid, _ := strconv.ParseInt(f.ID, 10, 64)
		if f.Name == meta.Name && fid > newest {
			found, newest = &files[i], fid
		}
	}
	switch {
	case found == nil:
		return connectors.Attachment{}, fmt.Errorf("%w: rt did not keep the file %q on ticket %s (over its MaxAttachmentSize?; RT said: %s)", connectors.ErrInvalid, meta.Name, id, strings.Join(msgs, " | "))
	case found.Size != meta.Size && !strings.HasPrefix(strings.ToLower(ct), "text/"):
		return *found, fmt.Errorf("%w: rt kept %d of the %d bytes of %q on ticket %s (over its MaxAttachmentSize?)", connectors.ErrInvalid, found.Size, meta.Size, meta.Name, id)
	}
	return *found, nil
}
