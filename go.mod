module github.com/edgehost/edgehost

go 1.26
