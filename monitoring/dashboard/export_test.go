package dashboard

// Exported for the external tests.
var StateColor = stateColor

const UnknownColor = unknownColor
