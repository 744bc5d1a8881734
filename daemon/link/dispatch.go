package link

import (
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// dispatch hands each message to the handlers of the subscription
// filters that match its topic. paho's router would do it, but it splits
// every route and the topic anew for every message and every route; a
// relay reads a reply for every callback it answers. Here the filters are
// split once and the topic is walked in place.
type dispatch []filterRoute

type filterRoute struct {
	levels []string // the filter's levels, without a $share/{group}/ prefix
	h      Handler
}

func newDispatch(subs map[string]Handler) dispatch {
	d := make(dispatch, 0, len(subs))
	for f, h := range subs {
		if strings.HasPrefix(f, "$share/") {
			// $share/{group}/{filter}: the messages are the filter's.
			if parts := strings.SplitN(f, "/", 3); len(parts) == 3 {
				f = parts[2]
			}
		}
		d = append(d, filterRoute{levels: strings.Split(f, "/"), h: h})
	}
	return d
}

// dispatch calls the handler of every filter that matches m's topic
// and reports whether there was one.
func (d dispatch) dispatch(c *Conn, m paho.Message) bool {
	topic, found := m.Topic(), false
	for _, r := range d {
		if matchTopic(r.levels, topic) {
			r.h(c, m)
			found = true
		}
	}
	return found
}

// matchTopic reports whether a topic matches a filter's levels (MQTT
// 3.1.1 §4.7: + is one level, # the rest, including none).
func matchTopic(levels []string, topic string) bool {
	for i, l := range levels {
		if l == "#" {
			return true
		}
		level, rest, more := strings.Cut(topic, "/")
		if l != "+" && l != level {
			return false
		}
		if !more {
			// The topic ends here: so must the filter, or go on with #
			// (a/# matches a).
			return i == len(levels)-1 || levels[i+1] == "#"
		}
		topic = rest
	}
	return false
}
