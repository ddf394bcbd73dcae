module todo-web-server

go 1.26
