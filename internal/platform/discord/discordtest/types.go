package discordtest

import (
	"encoding/json"
	"time"
)

// The types a test uses to build the world and to read what the chats show.
// The JSON objects the server sends are further down, written from Discord's
// documentation (discord.com/developers/docs, "Resources" and "Events")
// rather than taken from a client library, so that the fake checks the
// adapter against the API's shapes and not against the library's idea of
// them.

// The channel types the fake knows (docs: resources/channel, "Channel
// Types").
const (
	ChannelGuildText    = 0  // a text channel in a guild
	ChannelDM           = 1  // a direct message between the bot and one user
	ChannelPublicThread = 11 // a public thread under a guild text channel
)

// The gateway intents that change what the fake sends (docs:
// events/gateway, "Gateway Intents").
const (
	IntentGuilds                = 1 << 0
	IntentGuildMessages         = 1 << 9
	IntentGuildMessageReactions = 1 << 10
	IntentDirectMessages        = 1 << 12
	IntentDirectMessageReaction = 1 << 13
	// IntentMessageContent is privileged: without it, messages in guild
	// channels arrive with empty content, attachments and embeds, except
	// the bot's own and those that mention it.
	IntentMessageContent = 1 << 15
)

// The routes, as Call.Route names them and RateLimitNth takes them.
const (
	RouteGetChannel     = "GET /channels/{channel.id}"
	RouteGetMessages    = "GET /channels/{channel.id}/messages"
	RouteCreateMessage  = "POST /channels/{channel.id}/messages"
	RouteGetMessage     = "GET /channels/{channel.id}/messages/{message.id}"
	RouteEditMessage    = "PATCH /channels/{channel.id}/messages/{message.id}"
	RouteDeleteMessage  = "DELETE /channels/{channel.id}/messages/{message.id}"
	RouteTyping         = "POST /channels/{channel.id}/typing"
	RouteStartThread    = "POST /channels/{channel.id}/messages/{message.id}/threads"
	RouteAddReaction    = "PUT /channels/{channel.id}/messages/{message.id}/reactions/{emoji}/@me"
	RouteDeleteReaction = "DELETE /channels/{channel.id}/messages/{message.id}/reactions/{emoji}/@me"
	RouteCallback       = "POST /interactions/{interaction.id}/{interaction.token}/callback"
	RouteEditOriginal   = "PATCH /webhooks/{application.id}/{interaction.token}/messages/@original"
	RouteFollowup       = "POST /webhooks/{application.id}/{interaction.token}"
)

// User is a Discord user: someone who writes to the bot, or the bot.
type User struct {
	ID, Username, GlobalName string
	Bot                      bool
}

// Channel is a channel the bot can see: a guild text channel, a DM (with
// Recipient) or a thread (with ParentID).
type Channel struct {
	ID, GuildID, Name, ParentID string
	Type                        int
	// Recipient is the other user of a DM.
	Recipient *User
}

// Attachment is a file on a message. A user's attachment is served at
// {URL}/attachments/<channel>/<id>/<filename>.
type Attachment struct {
	Filename, ContentType string
	Data                  []byte
}

// Incoming is a message a user sends, for Inject.
type Incoming struct {
	ChannelID string
	Author    User
	Content   string
	// Mentions are the users mentioned; a "<@id>" in Content for the bot
	// or a known user is added automatically, as Discord does.
	Mentions []User
	// ReplyTo is the id of the message this one replies to.
	ReplyTo     string
	Attachments []Attachment
}

// Interaction is a slash command a user runs, for InjectInteraction.
type Interaction struct {
	// Name is the command's name, e.g. "new".
	Name      string
	ChannelID string
	User      User
	// GuildID is the guild of the channel; empty for a DM (then it is
	// taken from the channel when the channel is known).
	GuildID string
}

// AllowedMentions is the allowed_mentions object a bot sent with a message.
type AllowedMentions struct {
	Parse       []string
	Users       []string
	Roles       []string
	RepliedUser bool
}

// Message is a message as a chat shows it.
type Message struct {
	ID, ChannelID string
	Author        User
	Content       string
	At            time.Time // its timestamp
	// ReplyTo is the message_reference.message_id it was sent with.
	ReplyTo string
	// AllowedMentions is the allowed_mentions the bot sent (the last
	// edit's, if it sent one); nil if none was sent.
	AllowedMentions *AllowedMentions
	// Pings are who the message pings given its content and allowed
	// mentions, as Discord computes them: user ids, role ids, "everyone"
	// and "here", in the order they appear, and the replied-to author last.
	Pings       []string
	Edits       int
	Attachments []Attachment
	// Reactions are the emoji the bot has on it, in the order it added them.
	Reactions []string
	// Thread is the id of the thread started from it.
	Thread string
	// Interaction is the id of the interaction it answers, if any.
	Interaction string
	// Flags are the message's flags (64 ephemeral, 128 loading).
	Flags int
}

// Call is one HTTP request the server received.
type Call struct {
	At     time.Time
	Method string
	// Route is the method and the documented path template, e.g.
	// "POST /channels/{channel.id}/messages"; for a path no route
	// matches, the method and the path.
	Route string
	Path  string
	// ChannelID is the channel the call addressed (for an interaction's
	// callback and webhooks, the interaction's channel); empty for none.
	ChannelID string
	Status    int
	Body      []byte
	// RetryAfter is the retry_after of a 429.
	RetryAfter time.Duration
}

// Penalty is a time a route's bucket (or, Global, the whole bot) refused
// every call with 429.
type Penalty struct {
	ChannelID, Route string
	From, Until      time.Time
	Global           bool
}

// ApplicationCommand is a command the bot registered.
type ApplicationCommand struct {
	ID, Name, Description string
	Type                  int
}

// InteractionResponse is one answer to an interaction: its callback, an
// edit or deletion of the original response, or a follow-up.
type InteractionResponse struct {
	At time.Time
	// Kind is "callback", "edit", "delete" or "followup".
	Kind string
	// Type is the callback's type (4 message, 5 deferred, 1 pong).
	Type    int
	Content string
	Flags   int
	// MessageID is the message it created or changed, if any.
	MessageID string
	// Status is the HTTP status answered (404 for a callback too late).
	Status int
}

// ---- the JSON objects the server sends ----

// apiUser is the user object (docs: resources/user, "User Object").
type apiUser struct {
	ID            string  `json:"id"`
	Username      string  `json:"username"`
	Discriminator string  `json:"discriminator"`
	GlobalName    *string `json:"global_name"`
	Avatar        *string `json:"avatar"`
	Bot           bool    `json:"bot,omitempty"`
	System        bool    `json:"system,omitempty"`
	PublicFlags   int     `json:"public_flags"`
	// The bot's own object (GET /users/@me, READY) has these besides.
	Verified   *bool `json:"verified,omitempty"`
	MFAEnabled *bool `json:"mfa_enabled,omitempty"`
	Flags      *int  `json:"flags,omitempty"`
}

// apiMember is a guild member object (docs: resources/guild, "Guild Member
// Object"); User is left out where the docs leave it out (MESSAGE_CREATE).
type apiMember struct {
	User                       *apiUser `json:"user,omitempty"`
	Nick                       *string  `json:"nick"`
	Avatar                     *string  `json:"avatar"`
	Roles                      []string `json:"roles"`
	JoinedAt                   string   `json:"joined_at"`
	PremiumSince               *string  `json:"premium_since"`
	Deaf                       bool     `json:"deaf"`
	Mute                       bool     `json:"mute"`
	Flags                      int      `json:"flags"`
	Pending                    bool     `json:"pending"`
	Permissions                string   `json:"permissions,omitempty"`
	CommunicationDisabledUntil *string  `json:"communication_disabled_until"`
}

// apiAttachment is the attachment object (docs: resources/message,
// "Attachment Object").
type apiAttachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url"`
	Width       *int   `json:"width,omitempty"`
	Height      *int   `json:"height,omitempty"`
}

// apiEmoji is a partial emoji object, as in a reaction.
type apiEmoji struct {
	ID   *string `json:"id"`
	Name string  `json:"name"`
}

// apiReaction is the reaction object (docs: resources/message, "Reaction
// Object").
type apiReaction struct {
	Count        int            `json:"count"`
	CountDetails map[string]int `json:"count_details"`
	Me           bool           `json:"me"`
	MeBurst      bool           `json:"me_burst"`
	Emoji        apiEmoji       `json:"emoji"`
	BurstColors  []string       `json:"burst_colors"`
}

// apiMessageReference is the message reference object (docs:
// resources/message, "Message Reference Object").
type apiMessageReference struct {
	Type            int    `json:"type"`
	MessageID       string `json:"message_id,omitempty"`
	ChannelID       string `json:"channel_id,omitempty"`
	GuildID         string `json:"guild_id,omitempty"`
	FailIfNotExists *bool  `json:"fail_if_not_exists,omitempty"`
}

// apiInteractionMetadata is the message interaction metadata object of a
// response to an interaction.
type apiInteractionMetadata struct {
	ID   string  `json:"id"`
	Type int     `json:"type"`
	User apiUser `json:"user"`
	Name string  `json:"name,omitempty"`
}

// apiMessage is the message object (docs: resources/message, "Message
// Object"). GuildID and Member are only in gateway events.
type apiMessage struct {
	ID                  string                  `json:"id"`
	ChannelID           string                  `json:"channel_id"`
	GuildID             string                  `json:"guild_id,omitempty"`
	Author              apiUser                 `json:"author"`
	Member              *apiMember              `json:"member,omitempty"`
	Content             string                  `json:"content"`
	Timestamp           string                  `json:"timestamp"`
	EditedTimestamp     *string                 `json:"edited_timestamp"`
	TTS                 bool                    `json:"tts"`
	MentionEveryone     bool                    `json:"mention_everyone"`
	Mentions            []apiUser               `json:"mentions"`
	MentionRoles        []string                `json:"mention_roles"`
	Attachments         []apiAttachment         `json:"attachments"`
	Embeds              []json.RawMessage       `json:"embeds"`
	Reactions           []apiReaction           `json:"reactions,omitempty"`
	Pinned              bool                    `json:"pinned"`
	WebhookID           string                  `json:"webhook_id,omitempty"`
	Type                int                     `json:"type"`
	ApplicationID       string                  `json:"application_id,omitempty"`
	Flags               int                     `json:"flags"`
	Components          []json.RawMessage       `json:"components"`
	MessageReference    *apiMessageReference    `json:"message_reference,omitempty"`
	ReferencedMessage   *json.RawMessage        `json:"referenced_message,omitempty"`
	InteractionMetadata *apiInteractionMetadata `json:"interaction_metadata,omitempty"`
	Thread              *apiChannel             `json:"thread,omitempty"`
}

// apiThreadMetadata is the thread metadata object (docs: resources/channel,
// "Thread Metadata Object").
type apiThreadMetadata struct {
	Archived            bool   `json:"archived"`
	AutoArchiveDuration int    `json:"auto_archive_duration"`
	ArchiveTimestamp    string `json:"archive_timestamp"`
	Locked              bool   `json:"locked"`
	CreateTimestamp     string `json:"create_timestamp,omitempty"`
}

// apiChannel is the channel object (docs: resources/channel, "Channel
// Object"), for the types the fake has.
type apiChannel struct {
	ID                   string             `json:"id"`
	Type                 int                `json:"type"`
	GuildID              string             `json:"guild_id,omitempty"`
	Position             *int               `json:"position,omitempty"`
	PermissionOverwrites []json.RawMessage  `json:"permission_overwrites,omitempty"`
	Name                 *string            `json:"name,omitempty"`
	Topic                *string            `json:"topic,omitempty"`
	NSFW                 *bool              `json:"nsfw,omitempty"`
	LastMessageID        *string            `json:"last_message_id"`
	RateLimitPerUser     *int               `json:"rate_limit_per_user,omitempty"`
	Recipients           []apiUser          `json:"recipients,omitempty"`
	OwnerID              string             `json:"owner_id,omitempty"`
	ParentID             *string            `json:"parent_id,omitempty"`
	MessageCount         *int               `json:"message_count,omitempty"`
	MemberCount          *int               `json:"member_count,omitempty"`
	TotalMessageSent     *int               `json:"total_message_sent,omitempty"`
	ThreadMetadata       *apiThreadMetadata `json:"thread_metadata,omitempty"`
	Flags                int                `json:"flags"`
	NewlyCreated         bool               `json:"newly_created,omitempty"`
}

// apiRole is the role object (docs: topics/permissions, "Role Object").
type apiRole struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Color       int    `json:"color"`
	Hoist       bool   `json:"hoist"`
	Position    int    `json:"position"`
	Permissions string `json:"permissions"`
	Managed     bool   `json:"managed"`
	Mentionable bool   `json:"mentionable"`
	Flags       int    `json:"flags"`
}

// apiGuild is the guild object as GUILD_CREATE sends it (docs:
// events/gateway-events, "Guild Create").
type apiGuild struct {
	ID                          string            `json:"id"`
	Name                        string            `json:"name"`
	Icon                        *string           `json:"icon"`
	OwnerID                     string            `json:"owner_id"`
	AFKTimeout                  int               `json:"afk_timeout"`
	VerificationLevel           int               `json:"verification_level"`
	DefaultMessageNotifications int               `json:"default_message_notifications"`
	ExplicitContentFilter       int               `json:"explicit_content_filter"`
	Roles                       []apiRole         `json:"roles"`
	Emojis                      []json.RawMessage `json:"emojis"`
	Features                    []string          `json:"features"`
	MFALevel                    int               `json:"mfa_level"`
	SystemChannelFlags          int               `json:"system_channel_flags"`
	PreferredLocale             string            `json:"preferred_locale"`
	PremiumTier                 int               `json:"premium_tier"`
	NSFWLevel                   int               `json:"nsfw_level"`
	Stickers                    []json.RawMessage `json:"stickers"`
	// The GUILD_CREATE extras.
	JoinedAt             string            `json:"joined_at"`
	Large                bool              `json:"large"`
	Unavailable          bool              `json:"unavailable"`
	MemberCount          int               `json:"member_count"`
	VoiceStates          []json.RawMessage `json:"voice_states"`
	Members              []apiMember       `json:"members"`
	Channels             []apiChannel      `json:"channels"`
	Threads              []apiChannel      `json:"threads"`
	Presences            []json.RawMessage `json:"presences"`
	StageInstances       []json.RawMessage `json:"stage_instances"`
	GuildScheduledEvents []json.RawMessage `json:"guild_scheduled_events"`
}

// apiCommand is the application command object (docs:
// interactions/application-commands, "Application Command Object").
type apiCommand struct {
	ID                       string            `json:"id"`
	Type                     int               `json:"type"`
	ApplicationID            string            `json:"application_id"`
	Name                     string            `json:"name"`
	Description              string            `json:"description"`
	Options                  []json.RawMessage `json:"options,omitempty"`
	DefaultMemberPermissions *string           `json:"default_member_permissions"`
	NSFW                     bool              `json:"nsfw"`
	Version                  string            `json:"version"`
}

// apiError is the body of an error answer (docs: reference, "Error
// Messages").
type apiErrorBody struct {
	Message string         `json:"message"`
	Code    int            `json:"code"`
	Errors  map[string]any `json:"errors,omitempty"`
}

// apiRateLimited is the body of a 429 (docs: topics/rate-limits, "Rate
// Limit Response Structure").
type apiRateLimited struct {
	Message    string  `json:"message"`
	RetryAfter float64 `json:"retry_after"`
	Global     bool    `json:"global"`
}

// gatewayPayload is one gateway message (docs: events/gateway-events,
// "Payload Structure").
type gatewayPayload struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int            `json:"s"`
	T  *string         `json:"t"`
}
