package webchat

import "github.com/herald-chat/herald/internal/format"

// renderHTML turns the agent's markdown into safe HTML for the page.
func renderHTML(md string) string { return format.Render(md, format.HTML) }
