package privacy

import "os"

// ciVars maps an environment variable that a CI service sets to the name
// recorded in env.ci_name. They are checked in this order; the generic CI
// variable comes last.
var ciVars = [...]struct{ env, name string }{
	{"GITHUB_ACTIONS", "github_actions"},
	{"GITLAB_CI", "gitlab"},
	{"BUILDKITE", "buildkite"},
	{"CIRCLECI", "circleci"},
	{"TRAVIS", "travis"},
	{"JENKINS_URL", "jenkins"},
	{"TF_BUILD", "azure_pipelines"},
	{"TEAMCITY_VERSION", "teamcity"},
	{"BITBUCKET_BUILD_NUMBER", "bitbucket"},
	{"CODEBUILD_BUILD_ID", "aws_codebuild"},
	{"APPVEYOR", "appveyor"},
	{"DRONE", "drone"},
	{"SEMAPHORE", "semaphore"},
	{"CIRRUS_CI", "cirrus"},
	{"BITRISE_IO", "bitrise"},
	{"BUDDY_WORKSPACE_ID", "buddy"},
	{"CF_BUILD_ID", "codefresh"},
	{"HEROKU_TEST_RUN_ID", "heroku"},
	{"NETLIFY", "netlify"},
	{"VERCEL", "vercel"},
	{"WOODPECKER_CI", "woodpecker"},
	{"HARNESS_BUILD_ID", "harness"},
}

// DetectCI reports whether the environment is a CI service, and which.
// A service-specific variable set to anything but a false value (0, false,
// no, off) gives its name ("github_actions", "gitlab", "jenkins", ...);
// otherwise CI set to anything but a false value gives "generic".
// getenv nil means os.Getenv.
func DetectCI(getenv func(string) string) (name string, ok bool) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, v := range ciVars[:] { // [:]: ranging over the array would copy it onto the stack
		if set(getenv(v.env)) {
			return v.name, true
		}
	}
	if set(getenv("CI")) {
		return "generic", true
	}
	return "", false
}

// set reports whether an environment value is present and not a false word.
func set(v string) bool {
	if v == "" {
		return false
	}
	on, ok := parseSwitch(v)
	return on || !ok
}
