package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/strictjson"
)

// CloudFacts asks the control plane what it knows about the machine's own
// scope (GET /v1/machines/{id}/cloudFacts): the role assignments that
// apply to it, its standing administrators and how many other machines
// share its subscription. The body is read up to
// apiv1.MaxCloudFactsBody bytes and checked by ParseCloudFacts.
func (m *Machine) CloudFacts(ctx context.Context) (apiv1.CloudFacts, error) {
	a, err := m.assertion()
	if err != nil {
		return apiv1.CloudFacts{}, err
	}
	var buf bytes.Buffer
	if _, err := m.c.stream(ctx, m.path("/cloudFacts"), a, &buf, apiv1.MaxCloudFactsBody); err != nil {
		return apiv1.CloudFacts{}, err
	}
	return ParseCloudFacts(buf.Bytes())
}

// ParseCloudFacts decodes and checks a cloud facts body, which the audit
// treats as untrusted input: duplicate or case-variant keys, more than
// apiv1.MaxCloudAssignments assignments or admins, a negative count, an
// unknown inheritedFrom, or names that are empty, longer than 256 bytes or
// hold control characters are refused (apiv1.CodeBadResponse). Unknown
// fields are ignored (a newer server may add some).
func ParseCloudFacts(data []byte) (apiv1.CloudFacts, error) {
	var out apiv1.CloudFacts
	bad := func(format string, args ...any) (apiv1.CloudFacts, error) {
		return apiv1.CloudFacts{}, errcode.New(apiv1.CodeBadResponse, "the cloud facts from the control plane are not valid: "+format, args...)
	}
	if len(data) > apiv1.MaxCloudFactsBody {
		return bad("the body is longer than %d bytes", apiv1.MaxCloudFactsBody)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return bad("%v", err)
	}
	if err := strictjson.Check(data, &out); err != nil {
		return bad("%v", err)
	}
	if out.OtherMachines < 0 {
		return bad("otherMachines is negative")
	}
	if len(out.Assignments) > apiv1.MaxCloudAssignments || len(out.StandingAdmins) > apiv1.MaxCloudAssignments || len(out.AdminRoles) > 64 {
		return bad("more than %d assignments or administrators", apiv1.MaxCloudAssignments)
	}
	for _, c := range []struct{ field, v string }{{"machineId", out.MachineID}, {"resourceId", out.ResourceID}, {"subscriptionId", out.SubscriptionID}, {"resourceGroup", out.ResourceGroup}} {
		if err := checkFactText(c.v, 1024, false); err != nil {
			return bad("%s %v", c.field, err)
		}
	}
	for i, a := range out.Assignments {
		for _, c := range []struct{ field, v string }{{"principal", a.Principal}, {"role", a.Role}} {
			if err := checkFactText(c.v, 256, true); err != nil {
				return bad("assignments[%d].%s %v", i, c.field, err)
			}
		}
		if err := checkFactText(a.Scope, 1024, false); err != nil {
			return bad("assignments[%d].scope %v", i, err)
		}
		switch a.InheritedFrom {
		case apiv1.FromTenant, apiv1.FromSubscription, apiv1.FromResourceGroup, apiv1.FromMachine:
		default:
			return bad("assignments[%d].inheritedFrom %q is not tenant, subscription, resourceGroup or machine", i, a.InheritedFrom)
		}
	}
	for i, p := range out.StandingAdmins {
		if err := checkFactText(p, 256, true); err != nil {
			return bad("standingAdmins[%d] %v", i, err)
		}
	}
	for i, r := range out.AdminRoles {
		if err := checkFactText(r, 256, true); err != nil {
			return bad("adminRoles[%d] %v", i, err)
		}
	}
	if out.Assignments == nil {
		out.Assignments = []apiv1.CloudRoleAssignment{}
	}
	if out.StandingAdmins == nil {
		out.StandingAdmins = []string{}
	}
	if out.AdminRoles == nil {
		out.AdminRoles = []string{}
	}
	return out, nil
}

func checkFactText(v string, max int, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return fmt.Errorf("is empty")
	case len(v) > max:
		return fmt.Errorf("is longer than %d bytes", max)
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		return fmt.Errorf("holds control characters")
	}
	return nil
}
