package controlplane

// ValidateStatus exports validateStatus to the API tests.
var ValidateStatus = validateStatus
